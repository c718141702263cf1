-- ARGV: node, trunk... Gives up each trunk's registration if node holds it.
local node = ARGV[1]
for i = 2, #ARGV do
  local key = p .. 'registrant:' .. ARGV[i]
  if redis.call('HGET', key, 'node') == node then
    redis.call('DEL', key)
    redis.call('SADD', p .. 'vacant', ARGV[i])
  end
end
return 1

-- ARGV: node, trunk... A planned shutdown: the host's registrations (still held), its
-- channels and its lease go at once.
local node = ARGV[1]
for i = 2, #ARGV do
  local key = p .. 'registrant:' .. ARGV[i]
  if redis.call('HGET', key, 'node') == node then
    redis.call('DEL', key)
    redis.call('SADD', p .. 'vacant', ARGV[i])
  end
end
prune(node)
return 1

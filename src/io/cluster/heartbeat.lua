-- ARGV: node, lease (ms), a boot id to set if Redis has none (it lost its data).
-- Returns {epoch, rejoined, boot, alive nodes, {trunk, total, ...}, vacant trunks}.
local node, lease = ARGV[1], tonumber(ARGV[2])
local boot = redis.call('GET', p .. 'boot')
if not boot then
  boot = ARGV[3]
  redis.call('SET', p .. 'boot', boot)
end
local rejoined = 0
local epoch = redis.call('HGET', p .. 'epoch', node)
if not alive(node) or not epoch then
  -- A new epoch: registrations held under the old one are no longer this host's.
  prune(node)
  epoch = redis.call('INCR', p .. 'epochs')
  redis.call('HSET', p .. 'epoch', node, epoch)
  rejoined = 1
end
redis.call('HSET', p .. 'expiry', node, now + lease)
local live, live_set = {}, {}
local expiries = redis.call('HGETALL', p .. 'expiry')
for i = 1, #expiries, 2 do
  if tonumber(expiries[i + 1]) >= now then
    live[#live + 1] = expiries[i]
    live_set[expiries[i]] = true
  else
    prune(expiries[i])
  end
end
local totals, seen = {}, {}
for _, host in ipairs(live) do
  for _, trunk in ipairs(redis.call('SMEMBERS', p .. 'held:' .. host)) do
    if not seen[trunk] then
      seen[trunk] = true
      local sum = 0
      local fields = redis.call('HGETALL', p .. 'channels:' .. trunk)
      for i = 1, #fields, 2 do
        if live_set[fields[i]] then
          sum = sum + tonumber(fields[i + 1])
        end
      end
      totals[#totals + 1] = trunk
      totals[#totals + 1] = tostring(sum)
    end
  end
end
local vacant = redis.call('SMEMBERS', p .. 'vacant')
return {tonumber(epoch), rejoined, boot, live, totals, vacant}

-- ARGV: node, trunk, count (held by node with the new call), max_channels, max_cps.
-- Returns {verdict, total}: 1 granted, 0 busy, 2 over max_cps, 3 node not alive.
local node, trunk = ARGV[1], ARGV[2]
local count, max, rate = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if not alive(node) then
  return {3, 0}
end
local key = p .. 'channels:' .. trunk
local others = 0
local fields = redis.call('HGETALL', key)
for i = 1, #fields, 2 do
  local other = fields[i]
  if other ~= node then
    if alive(other) then
      others = others + tonumber(fields[i + 1])
    else
      prune(other)
    end
  end
end
if max > 0 and others + count > max then
  write(node, trunk, count - 1)
  return {0, others + count - 1}
end
if rate > 0 then
  -- GCRA: `rate` calls per second with a burst of `rate`, on Redis's clock.
  local interval = 1000 / rate
  local tolerance = interval * (rate - 1)
  local cps = p .. 'cps:' .. trunk
  local tat = tonumber(redis.call('GET', cps) or now)
  local start = math.max(tat, now)
  if start - now > tolerance then
    write(node, trunk, count - 1)
    return {2, others + count - 1}
  end
  redis.call('SET', cps, tostring(start + interval), 'PX', math.ceil(tolerance + interval) + 1000)
end
write(node, trunk, count)
return {1, others + count}

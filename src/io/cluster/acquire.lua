-- ARGV: node, epoch, trunk. Makes `node` the registrant of `trunk` unless a live host
-- holds it under its current epoch. Returns the holder ('' when node is not alive).
local node, epoch, trunk = ARGV[1], ARGV[2], ARGV[3]
local key = p .. 'registrant:' .. trunk
local holder = redis.call('HGET', key, 'node')
if holder and holder ~= node and alive(holder)
    and redis.call('HGET', key, 'epoch') == redis.call('HGET', p .. 'epoch', holder) then
  return holder
end
if not alive(node) or redis.call('HGET', p .. 'epoch', node) ~= epoch then
  return holder or ''
end
redis.call('HSET', key, 'node', node, 'epoch', epoch)
redis.call('SREM', p .. 'vacant', trunk)
return node

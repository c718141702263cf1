-- Shared head of every trunkd script (issue 17). Keys live under one hash tag, so a
-- script touches one slot; they are built here rather than passed, so the scripts need
-- a standalone (or replicated/Sentinel) Redis, not Redis Cluster.
local p = '{trunkd}:'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- A host is alive while its lease (ms since the epoch, Redis's clock) has not run out.
local function alive(node)
  local expiry = redis.call('HGET', p .. 'expiry', node)
  return expiry and tonumber(expiry) >= now
end

-- Writes `count` as `node`'s channels on `trunk`; the per-host set lists its trunks with
-- any, so its channels can be pruned when it dies.
local function write(node, trunk, count)
  local key = p .. 'channels:' .. trunk
  if count > 0 then
    redis.call('HSET', key, node, count)
    redis.call('SADD', p .. 'held:' .. node, trunk)
  else
    redis.call('HDEL', key, node)
    redis.call('SREM', p .. 'held:' .. node, trunk)
  end
end

-- Removes a dead host: its channels, its lease, its epoch.
local function prune(node)
  for _, trunk in ipairs(redis.call('SMEMBERS', p .. 'held:' .. node)) do
    redis.call('HDEL', p .. 'channels:' .. trunk, node)
  end
  redis.call('DEL', p .. 'held:' .. node)
  redis.call('HDEL', p .. 'expiry', node)
  redis.call('HDEL', p .. 'epoch', node)
end

-- Gives `trunk`'s registration up if `node` holds it; the others may take it
-- (`vacant`, read by their heartbeats).
local function resign(node, trunk)
  local key = p .. 'registrant:' .. trunk
  if redis.call('HGET', key, 'node') == node then
    redis.call('DEL', key)
    redis.call('SADD', p .. 'vacant', trunk)
  end
end

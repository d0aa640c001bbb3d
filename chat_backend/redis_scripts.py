"""redis_scripts: the Lua that makes a capped put one atomic step in Redis, for every replica at once.

What `RedisStore.put_capped` stored is accounted in three structures beside the values: `held` (key -> "size
owner"), `expiries` (key -> when its time is up, in ms) and `bytes` (field "" -> the namespace's total,
"owner:<owner>" -> each owner's). Redis drops an expired value by itself; its accounting goes when a later capped
put finds its time is up. Every script takes the same KEYS: the value, the namespace's index (the sorted set
`trim` reads), held, expiries, bytes.
"""

_FORGET = """
local function forget(k)
  local held = redis.call('HGET', KEYS[3], k)
  if held then
    local size, owner = string.match(held, '^(%d+) (.*)$')
    for _, field in ipairs({'', 'owner:' .. owner}) do
      if redis.call('HINCRBY', KEYS[5], field, -tonumber(size)) <= 0 then redis.call('HDEL', KEYS[5], field) end
    end
    redis.call('HDEL', KEYS[3], k)
  end
  redis.call('ZREM', KEYS[4], k)
  redis.call('ZREM', KEYS[2], k)
end
"""
# ARGV: key, value, ttl in ms (0: none), now in ms, max bytes, max owner bytes, owner. Returns 0 when stored,
# 1 when the namespace is full, 2 when the owner's part is.
PUT_CAPPED = (
    _FORGET
    + """
local key, value, ttl, now, owner = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[7]
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do forget(gone) end
local old_size, old_owner = 0, nil
local held = redis.call('HGET', KEYS[3], key)
if held then
  old_size, old_owner = string.match(held, '^(%d+) (.*)$')
  old_size = tonumber(old_size)
end
local size = #key + #value
local used = tonumber(redis.call('HGET', KEYS[5], '') or '0') - old_size
local owned = tonumber(redis.call('HGET', KEYS[5], 'owner:' .. owner) or '0')
if old_owner == owner then owned = owned - old_size end
if tonumber(ARGV[5]) > 0 and used + size > tonumber(ARGV[5]) then return 1 end
if tonumber(ARGV[6]) > 0 and owned + size > tonumber(ARGV[6]) then return 2 end
forget(key)
if ttl > 0 then
  redis.call('SET', KEYS[1], value, 'PX', ttl)
  redis.call('ZADD', KEYS[4], now + ttl, key)
else
  redis.call('SET', KEYS[1], value)
end
redis.call('ZADD', KEYS[2], now / 1000, key)
redis.call('HSET', KEYS[3], key, size .. ' ' .. owner)
redis.call('HINCRBY', KEYS[5], '', size)
redis.call('HINCRBY', KEYS[5], 'owner:' .. owner, size)
return 0
"""
)
# ARGV: key. Returns how many values were deleted (0 or 1).
DELETE = _FORGET + "local deleted = redis.call('DEL', KEYS[1])\nforget(ARGV[1])\nreturn deleted\n"

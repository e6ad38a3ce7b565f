"""The Lua scripts the Redis backend runs: each check-and-update is one atomic server-side step.

Times come from the Redis server's clock (``TIME``), never from a replica's: every replica then
agrees on when a lease expires and how far a token bucket has refilled. Scripts that call ``TIME``
before writing need Redis 5 or later (effects replication). Keys are passed as KEYS so the
scripts stay correct on a single Redis or a primary with replicas; Redis Cluster would also need
hash tags, which this layout does not use.
"""

from __future__ import annotations

_NOW = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS: session key, device set. ARGV: token, lease ms, device limit (0 = none), set member.
# The device set is a sorted set scored by expiry time, so a crashed replica's entries age out
# by themselves instead of holding the device's concurrency slot forever.
CLAIM = (
    _NOW
    + """
local now, lease, limit = now_ms(), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('EXISTS', KEYS[1]) == 1 then return 'duplicate' end
if limit > 0 and redis.call('ZCARD', KEYS[2]) >= limit then return 'busy' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', lease)
redis.call('ZADD', KEYS[2], now + lease, ARGV[4])
redis.call('PEXPIRE', KEYS[2], lease)
return 'ok'
"""
)

# KEYS: session key, device set, repeated per claim. ARGV: lease ms, then token, member per claim.
# Renews a held claim, re-creates a missing one (Redis restarted, or the turn was admitted during
# an outage) and reports one held by another replica (0) without touching it. No device limit
# here: the turn is already running and must not be stopped by bookkeeping.
KEEP = (
    _NOW
    + """
local now, lease = now_ms(), tonumber(ARGV[1])
local held = {}
for i = 1, #KEYS / 2 do
  local session, device = KEYS[2 * i - 1], KEYS[2 * i]
  local token, member = ARGV[2 * i], ARGV[2 * i + 1]
  local owner = redis.call('GET', session)
  if owner and owner ~= token then
    held[i] = 0
  else
    redis.call('SET', session, token, 'PX', lease)
    redis.call('ZADD', device, now + lease, member)
    redis.call('PEXPIRE', device, lease)
    held[i] = 1
  end
end
return held
"""
)

# KEYS: session key, device set. ARGV: token, member. Only the claim's own token frees the key.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""

# KEYS: device set. ARGV: channel, hardware id, origin replica id.
# Reading the set and publishing in one step defines "started before the interrupt" exactly:
# the turns registered at this moment, named by token, with no clock comparison between replicas.
INTERRUPT = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
if #members > 0 then
  redis.call('PUBLISH', ARGV[1], cjson.encode({h = ARGV[2], o = ARGV[3], m = members}))
end
return members
"""
)

# KEYS: token bucket (hash), day, week and month counters.
# ARGV: tokens per ms, burst, three quotas (0 = off), three counter TTLs in seconds.
# Returns {'ok'}, {'quota', period 1..3} or {'rate', tokens left}; a refusal counts nothing.
RATE_CHECK = (
    _NOW
    + """
for i = 1, 3 do
  local quota = tonumber(ARGV[2 + i])
  if quota > 0 and tonumber(redis.call('GET', KEYS[1 + i]) or '0') >= quota then
    return {'quota', tostring(i)}
  end
end
local now, rate, burst = now_ms(), tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
if tokens < 1 then return {'rate', tostring(tokens)} end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', now)
-- A bucket untouched until it is full again is the same as no bucket: let it expire.
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
for i = 1, 3 do
  if tonumber(ARGV[2 + i]) > 0 then
    redis.call('INCR', KEYS[1 + i])
    redis.call('EXPIRE', KEYS[1 + i], ARGV[5 + i])
  end
end
return {'ok'}
"""
)

# Same KEYS and ARGV as RATE_CHECK: gives back one token and one turn of each quota.
RATE_REFUND = (
    _NOW
    + """
local now, rate, burst = now_ms(), tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens ~= nil and at ~= nil then
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate + 1)
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
end
for i = 1, 3 do
  if tonumber(ARGV[2 + i]) > 0 and tonumber(redis.call('GET', KEYS[1 + i]) or '0') > 0 then
    redis.call('DECR', KEYS[1 + i])
  end
end
return 1
"""
)

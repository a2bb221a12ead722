"""The Lua scripts of the Redis backend (server/realtime/backends/redis.py): each runs atomically in
Redis, so every process sees one order per stream and one presence total per room."""

# One event, sequenced for several audiences: INCR each audience's counter, XADD the final envelope
# to its capped stream (entry id = seq) and PUBLISH it, atomically (see Backend.append).
APPEND = """
local n = #ARGV - 5
local maxlen, ttl, channel, epoch, presence = ARGV[n+1], ARGV[n+2], ARGV[n+3], ARGV[n+4], ARGV[n+5]
local epochkey, preskey = KEYS[#KEYS-1], KEYS[#KEYS]
-- A presence count is published only while it is still the room's total (see Backend.append).
if presence ~= '' and tonumber(redis.call('GET', preskey) or '0') ~= tonumber(presence) then
  return {}
end
redis.call('SET', epochkey, epoch, 'NX')
redis.call('EXPIRE', epochkey, ttl)
local out = {}
for i = 0, (n / 3) - 1 do
  local audience, prefix, suffix = ARGV[i*3+1], ARGV[i*3+2], ARGV[i*3+3]
  local seqkey, streamkey = KEYS[i*2+1], KEYS[i*2+2]
  local seq = redis.call('INCR', seqkey)
  local envelope = prefix .. seq .. suffix
  redis.call('XADD', streamkey, 'MAXLEN', maxlen, seq .. '-1', 'e', envelope)
  redis.call('EXPIRE', seqkey, ttl)
  redis.call('EXPIRE', streamkey, ttl)
  redis.call('PUBLISH', channel, audience .. '|' .. seq .. '|' .. envelope)
  out[#out+1] = seq
end
return out
"""

# One process's viewer count reported; returns {room total, 1 if it changed since the last report}.
PRESENCE = """
local procs, mykey, lastkey = KEYS[1], KEYS[2], KEYS[3]
local me, count, ttl, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
if count > 0 then
  redis.call('SET', mykey, count, 'EX', ttl)
  redis.call('SADD', procs, me)
  redis.call('EXPIRE', procs, ttl * 20)
else
  redis.call('DEL', mykey)
  redis.call('SREM', procs, me)
end
local total = 0
for _, p in ipairs(redis.call('SMEMBERS', procs)) do
  local v = redis.call('GET', prefix .. p)
  if v then total = total + tonumber(v) else redis.call('SREM', procs, p) end
end
local last = tonumber(redis.call('GET', lastkey) or '0')
-- Refreshed on every report: if it expired while the count stood still, readers would see 0 and the
-- next report would announce an unchanged count as a change.
redis.call('SET', lastkey, total, 'EX', ttl * 20)
if last ~= total then
  return {total, 1}
end
return {total, 0}
"""

/**
 * The Lua scripts of the Redis quota store: each store operation is one script, so Redis
 * runs it as one atomic step (no other client's command runs in between). The layout of
 * the keys, all under the store's namespace `ns`:
 *
 *   c:<counter>   hash  b, o (settled bytes and objects), rb, ro (reserved by live reservations)
 *   counters      set   every counter id the store knows
 *   r:<id>        hash  a live reservation: b:<counter>, o:<counter> (amounts reserved),
 *                       m:<counter> (its limits, "maxBytes,maxObjects", empty for none),
 *                       and for a keyed one k (the key) and bf (the key's state before, JSON)
 *   exp           zset  live reservation ids by expiry (epoch ms)
 *   keys          hash  key -> id of the live reservation holding it
 *   l:<id>        hash  a keyed reservation that lapsed, as r:<id> was, until taken
 *   lapsed        set   ids of l:<id> hashes
 *   idx           hash  key -> size of every metered key settled (the index, see QuotaStore.reserveIndexed)
 *
 * Every script gets ARGV[1] = ns and ARGV[2] = the caller's clock (Date.now()), so
 * expiry follows the callers' clocks, never Redis's. Amounts stay decimal strings inside
 * Redis (HINCRBY): Lua's numbers print with 14 digits, which would round large sizes.
 * Scripts that first sweep lapsed reservations end at most SWEEP of them per run and
 * answer {'sweep'} without doing their work when more are left; the store runs them
 * again, so no single run blocks Redis for long and no check counts a lapsed reservation.
 */
import type { LuaScript } from './redis-connection.js';

/** Shared by every script: the sweep of lapsed reservations and the reserve check. */
const PRELUDE = `
local ns, now = ARGV[1], ARGV[2]
local SWEEP = 200

local function num(v) if v then return tonumber(v) end return 0 end
-- The negation of a decimal string, nil for zero (HINCRBY refuses "-0").
local function neg(s)
  if s == '0' then return nil end
  if string.sub(s, 1, 1) == '-' then return string.sub(s, 2) end
  return '-' .. s
end

-- Takes a reservation's amounts off its counters' reserved totals and frees its key.
local function unreserve(id, rkey)
  local f = redis.call('HGETALL', rkey)
  for i = 1, #f, 2 do
    local name, v = f[i], f[i + 1]
    local kind = string.sub(name, 1, 2)
    if kind == 'b:' or kind == 'o:' then
      local minus = neg(v)
      if minus then redis.call('HINCRBY', ns .. 'c:' .. string.sub(name, 3), kind == 'b:' and 'rb' or 'ro', minus) end
    elseif name == 'k' and redis.call('HGET', ns .. 'keys', v) == id then
      redis.call('HDEL', ns .. 'keys', v)
    end
  end
  redis.call('ZREM', ns .. 'exp', id)
end

-- Ends up to SWEEP lapsed reservations (keyed ones move to l:<id>); false when more are left.
local function sweep()
  local ids = redis.call('ZRANGEBYSCORE', ns .. 'exp', '-inf', now, 'LIMIT', 0, SWEEP + 1)
  for i = 1, math.min(#ids, SWEEP) do
    local id = ids[i]
    local rkey = ns .. 'r:' .. id
    unreserve(id, rkey)
    if redis.call('HEXISTS', rkey, 'k') == 1 then
      redis.call('RENAME', rkey, ns .. 'l:' .. id)
      redis.call('SADD', ns .. 'lapsed', id)
    else
      redis.call('DEL', rkey)
    end
  end
  return #ids <= SWEEP
end

-- The items of a reservation from ARGV[first] on (5 each: counter, bytes, objects,
-- maxBytes, maxObjects; amounts as decimal strings, limits empty for none).
local function argItems(first)
  local items = {}
  for i = first, #ARGV, 5 do items[#items + 1] = {ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]} end
  return items
end

-- The refusal of the items, or nil when they fit: settled (negative as 0) + reserved +
-- asked <= limit. old: amounts of the reservation being replaced, which stop counting if
-- this succeeds. Marks in absent the counters that have no hash yet (see record).
local function refusal(items, old, absent)
  local pending = {}
  for _, item in ipairs(items) do
    local c = item[1]
    local row = redis.call('HMGET', ns .. 'c:' .. c, 'b', 'o', 'rb', 'ro')
    if not (row[1] or row[2] or row[3] or row[4]) then absent[c] = true end
    local p = pending[c] or {0, 0}
    local o = old[c] or {0, 0}
    for j, kind in ipairs({'bytes', 'objects'}) do
      local asked = tonumber(item[1 + j])
      local limit = item[3 + j]
      local used = math.max(num(row[j]), 0)
      local reserved = num(row[j + 2]) - o[j] + p[j]
      if limit ~= '' and used + reserved + asked > tonumber(limit) then
        return {'refused', c, kind, limit, used, reserved, asked}
      end
      p[j] = p[j] + asked
    end
    pending[c] = p
  end
  return nil
end

-- Adds amount v (a decimal string) to field of hash h, unless it is zero: every write
-- command of a script is one more for the append-only file and the replicas.
local function add(h, field, v)
  if v ~= '0' then redis.call('HINCRBY', h, field, v) end
end

-- Adds the items to reservation id and to their counters' reserved totals. fields: the
-- reservation's other fields when it is new (written with its amounts in one HSET); nil
-- adds to one that exists. A counter of absent gets its id in the set of counters.
local function record(id, items, expiresAt, fields, absent)
  local rkey = ns .. 'r:' .. id
  local placed, later = {}, {}
  for _, item in ipairs(items) do
    local c = item[1]
    local ckey = ns .. 'c:' .. c
    if fields and not placed[c] then
      placed[c] = true
      local n = #fields
      fields[n + 1], fields[n + 2] = 'b:' .. c, item[2]
      fields[n + 3], fields[n + 4] = 'o:' .. c, item[3]
      fields[n + 5], fields[n + 6] = 'm:' .. c, item[4] .. ',' .. item[5]
    else
      -- Amounts added to a reservation that exists (grow), or a counter a new one names twice: after the HSET.
      later[#later + 1] = item
    end
    add(ckey, 'rb', item[2])
    add(ckey, 'ro', item[3])
    if absent[c] and (item[2] ~= '0' or item[3] ~= '0') then redis.call('SADD', ns .. 'counters', c) end
  end
  if fields and #fields > 0 then redis.call('HSET', rkey, unpack(fields)) end
  for _, item in ipairs(later) do
    local c = item[1]
    redis.call('HINCRBY', rkey, 'b:' .. c, item[2])
    redis.call('HINCRBY', rkey, 'o:' .. c, item[3])
    redis.call('HSET', rkey, 'm:' .. c, item[4] .. ',' .. item[5])
  end
  redis.call('ZADD', ns .. 'exp', expiresAt, id)
end

-- Takes reservation id of the items (replacing one of that id), holding key when given:
-- {'ok'}, {'busy'} when another reservation holds the key, or a refusal.
local function take(id, key, before, expiresAt, items)
  local rkey = ns .. 'r:' .. id
  if key then
    local holder = redis.call('HGET', ns .. 'keys', key)
    if holder and holder ~= id then return {'busy'} end
  end
  local old = {}
  local f = redis.call('HGETALL', rkey)
  for i = 1, #f, 2 do
    local kind, c = string.sub(f[i], 1, 2), string.sub(f[i], 3)
    if kind == 'b:' or kind == 'o:' then
      old[c] = old[c] or {0, 0}
      old[c][kind == 'b:' and 1 or 2] = tonumber(f[i + 1])
    end
  end
  local absent = {}
  local refused = refusal(items, old, absent)
  if refused then return refused end
  if #f > 0 then
    unreserve(id, rkey)
    redis.call('DEL', rkey)
  end
  local fields = {}
  if key then
    fields = {'k', key, 'bf', before}
    redis.call('HSET', ns .. 'keys', key, id)
  end
  record(id, items, expiresAt, fields, absent)
  return {'ok'}
end

-- Appends counter c and its b, o, rb, ro to out.
local function usage(out, c)
  local row = redis.call('HMGET', ns .. 'c:' .. c, 'b', 'o', 'rb', 'ro')
  out[#out + 1] = c
  for j = 1, 4 do out[#out + 1] = row[j] or '0' end
end
`;

function script(name: string, body: string): LuaScript {
  return { name, lua: `${PRELUDE}\n${body}` };
}

/** ARGV: ns, now, id, hasKey ('1'/'0'), key, before (JSON), expiresAt, items. Answers ok, busy or refused. */
export const RESERVE = script(
  'stowageQuotaReserve',
  `
if not sweep() then return {'sweep'} end
return take(ARGV[3], ARGV[4] == '1' and ARGV[5] or nil, ARGV[6], ARGV[7], argItems(8))
`,
);

/**
 * ARGV: ns, now, id, key, expiresAt, size, objects ('' for the default), counters (3
 * each: counter, maxBytes, maxObjects). Reads the key's size from idx and reserves what a
 * write to \`size\` adds to it, as RESERVE would with that before. Answers ok with the
 * size indexed (nil for none), busy or refused.
 */
export const RESERVE_INDEXED = script(
  'stowageQuotaReserveIndexed',
  `
if not sweep() then return {'sweep'} end
local id, key, expiresAt, size, objects = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local indexed = redis.call('HGET', ns .. 'idx', key)
local before, bytes, count = 'null', size, '1'
if indexed then
  before = '{"size":' .. indexed .. '}'
  -- %.0f: sizes are whole and below 2^53, which a double holds exactly (tostring would round to 14 digits).
  bytes = string.format('%.0f', math.max(0, tonumber(size) - tonumber(indexed)))
  count = '0'
end
if objects ~= '' then count = objects end
local items = {}
for i = 8, #ARGV, 3 do items[#items + 1] = {ARGV[i], bytes, count, ARGV[i + 1], ARGV[i + 2]} end
local reply = take(id, key, before, expiresAt, items)
if reply[1] == 'ok' then return {'ok', indexed or false} end
return reply
`,
);

/** ARGV: ns, now, id, expiresAt, items. Answers ok or refused. */
export const GROW = script(
  'stowageQuotaGrow',
  `
if not sweep() then return {'sweep'} end
local items, absent = argItems(5), {}
local refused = refusal(items, {}, absent)
if refused then return refused end
-- A reservation unknown (or lapsed) is reserved anew; HINCRBY makes its hash.
record(ARGV[3], items, ARGV[4], nil, absent)
return {'ok'}
`,
);

/** ARGV: ns, now, expiresAt, ids. */
export const RENEW = script(
  'stowageQuotaRenew',
  `
if not sweep() then return {'sweep'} end
for i = 4, #ARGV do
  if redis.call('EXISTS', ns .. 'r:' .. ARGV[i]) == 1 then redis.call('ZADD', ns .. 'exp', ARGV[3], ARGV[i]) end
end
return {'ok'}
`,
);

/**
 * ARGV: ns, now, n, n ids, d, d deltas (3 each: counter, bytes, objects), index entries
 * (2 each: key, size or '' for gone). Drops the reservations (a lapsed one too, so
 * nobody repairs a write its own process settled), applies the deltas, records the
 * index entries in `idx`, and answers the deltas' counters' usage (5 values each).
 */
export const SETTLE = script(
  'stowageQuotaSettle',
  `
-- No sweep: a settle checks no limit, and one of a reservation that lapsed unswept ends it as its sweep would.
local n = tonumber(ARGV[3])
for i = 4, 3 + n do
  local id = ARGV[i]
  local rkey = ns .. 'r:' .. id
  if redis.call('EXISTS', rkey) == 1 then
    unreserve(id, rkey)
    redis.call('DEL', rkey)
  elseif redis.call('SREM', ns .. 'lapsed', id) == 1 then
    redis.call('DEL', ns .. 'l:' .. id)
  end
end
local d = tonumber(ARGV[4 + n])
local last = 4 + n + 3 * d
for i = 5 + n, last, 3 do
  local ckey = ns .. 'c:' .. ARGV[i]
  add(ckey, 'b', ARGV[i + 1])
  add(ckey, 'o', ARGV[i + 2])
  redis.call('SADD', ns .. 'counters', ARGV[i])
end
for i = last + 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', ns .. 'idx', ARGV[i])
  else redis.call('HSET', ns .. 'idx', ARGV[i], ARGV[i + 1]) end
end
local out, seen = {}, {}
for i = 5 + n, last, 3 do
  if not seen[ARGV[i]] then
    seen[ARGV[i]] = true
    usage(out, ARGV[i])
  end
end
return out
`,
);

/** ARGV: ns, now, all ('1'/'0'), counter ids. Answers their usage (5 values each). */
export const READ = script(
  'stowageQuotaRead',
  `
if not sweep() then return {'sweep'} end
local out = {}
if ARGV[3] == '1' then
  for _, c in ipairs(redis.call('SMEMBERS', ns .. 'counters')) do usage(out, c) end
else
  for i = 4, #ARGV do usage(out, ARGV[i]) end
end
return out
`,
);

/** ARGV: ns, now, n, n counters (3 each: counter, bytes, objects), scopes. */
export const RESET = script(
  'stowageQuotaReset',
  `
local n = tonumber(ARGV[3])
local found = {}
for i = 4, 3 + 3 * n, 3 do
  found[ARGV[i]] = true
  redis.call('HSET', ns .. 'c:' .. ARGV[i], 'b', ARGV[i + 1], 'o', ARGV[i + 2])
  redis.call('SADD', ns .. 'counters', ARGV[i])
end
if #ARGV >= 4 + 3 * n then
  for _, c in ipairs(redis.call('SMEMBERS', ns .. 'counters')) do
    if not found[c] then
      for i = 4 + 3 * n, #ARGV do
        if string.sub(c, 1, #ARGV[i]) == ARGV[i] then
          redis.call('HSET', ns .. 'c:' .. c, 'b', '0', 'o', '0')
          break
        end
      end
    end
  end
end
return {'ok'}
`,
);

/** ARGV: ns, now, count. Takes up to count lapsed keyed reservations: {id, fields of l:<id>} each. */
export const TAKE_LAPSED = script(
  'stowageQuotaTakeLapsed',
  `
if not sweep() then return {'sweep'} end
local out = {}
for _, id in ipairs(redis.call('SPOP', ns .. 'lapsed', tonumber(ARGV[3]))) do
  local lkey = ns .. 'l:' .. id
  out[#out + 1] = {id, redis.call('HGETALL', lkey)}
  redis.call('DEL', lkey)
end
return out
`,
);

/** Every script of the store, to register on its connection. */
export const SCRIPTS: readonly LuaScript[] = [RESERVE, RESERVE_INDEXED, GROW, RENEW, SETTLE, READ, RESET, TAKE_LAPSED];

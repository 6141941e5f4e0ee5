-- wrk script: every request POSTs {"token":"tok-<n>"}, n chosen per request;
-- or, with "cookie" last, GETs the URL with the cookie sv_session=tok-<n>
-- (forward auth through a proxy); or, with "file <path>" last, GETs it with
-- line n of that file as its Cookie header (express-session's signed cookies,
-- which Lua cannot sign).
-- Arguments after "--":  uniform <lo> <hi>  |  zipf <n> <exponent>  |  sequential <lo> <hi>  [cookie | file <path>]
-- sequential sends each n once, in order, then stops the thread (cache warming);
-- wrk itself still waits out -d, so done() reports where it got to.

local headers = { ['Content-Type'] = 'application/json' }
local pick
local asCookie = false
local cookies

-- Zipf over 1..n by rejection-inversion (Hoermann and Derflinger, 1996):
-- constant time and memory per sample, unlike a 1M-entry table.
local function zipf (n, s)
  local function helper1 (x) -- log1p(x) / x
    if math.abs(x) > 1e-8 then return math.log(1 + x) / x end
    return 1 - x * (0.5 - x * (1 / 3 - 0.25 * x))
  end
  local function helper2 (x) -- expm1(x) / x
    if math.abs(x) > 1e-8 then return (math.exp(x) - 1) / x end
    return 1 + x * 0.5 * (1 + x * (1 / 3) * (1 + 0.25 * x))
  end
  local function hIntegral (x)
    local lx = math.log(x)
    return helper2((1 - s) * lx) * lx
  end
  local function h (x) return math.exp(-s * math.log(x)) end
  local function hInv (x)
    local t = x * (1 - s)
    if t < -1 then t = -1 end
    return math.exp(helper1(t) * x)
  end
  local hX1 = hIntegral(1.5) - 1
  local hN = hIntegral(n + 0.5)
  local sc = 2 - hInv(hIntegral(2.5) - h(2))
  return function ()
    for _ = 1, 1000 do
      local u = hN + math.random() * (hX1 - hN)
      local x = hInv(u)
      local k = math.floor(x + 0.5)
      if k < 1 then k = 1 elseif k > n then k = n end
      if k - x <= sc or u >= hIntegral(k + 0.5) - h(k) then return k end
    end
    return 1
  end
end

-- setup() and done() share one environment, apart from the threads'
local threads = {}

function setup (thread)
  threads[#threads + 1] = thread
  thread:set('seed', #threads)
end

function init (args)
  local mode = args[1]
  asCookie = args[4] == 'cookie'
  if args[4] == 'file' then
    cookies = {}
    for line in io.lines(args[5]) do cookies[#cookies + 1] = line end
  end
  math.randomseed(os.time() * 1000 + (seed or 0))
  if mode == 'uniform' then
    local lo, hi = tonumber(args[2]), tonumber(args[3])
    pick = function () return math.random(lo, hi) end
  elseif mode == 'zipf' then
    pick = zipf(tonumber(args[2]), tonumber(args[3]))
  elseif mode == 'sequential' then
    local lo, hi = tonumber(args[2]), tonumber(args[3])
    -- wrk calls request() once on the first thread to verify the script and
    -- never sends that one: start one early (sending lo twice at worst)
    nextN = lo - 1
    pick = function ()
      local n = math.max(nextN, lo)
      -- a request built in the same turn as stop() is never written, so stop
      -- one past the end and send hi twice
      if n > hi then
        n = hi
        wrk.thread:stop()
      end
      nextN = nextN + 1
      return n
    end
  else
    error('unknown mode ' .. tostring(mode))
  end
end

function request ()
  if cookies then return wrk.format('GET', nil, { Cookie = cookies[pick()] }) end
  if asCookie then return wrk.format('GET', nil, { Cookie = 'sv_session=tok-' .. pick() }) end
  return wrk.format('POST', nil, headers, '{"token":"tok-' .. pick() .. '"}')
end

function done (summary, latency)
  local e = summary.errors
  local reached = 0
  for _, thread in ipairs(threads) do reached = math.max(reached, thread:get('nextN') or 0) end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"durationUs":%d,"p50":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f,' ..
    '"next":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean, reached,
    e.connect, e.read, e.write, e.status, e.timeout))
end

-- wrk script: GET $BENCH_PATH presenting the `hot` tokens of the tokens file in turn, so
-- the load is spread over 1,000 sessions of 1,000 users (each touched once a minute).
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  local kind, token = line:match("^(%S+) (%S+)")
  if kind == "hot" then
    tokens[#tokens + 1] = token
  end
end
local path = os.getenv("BENCH_PATH") or "/auth/verify"
local i = math.random(#tokens)

request = function()
  i = i % #tokens + 1
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. tokens[i] })
end

-- GETs PATH_TEMPLATE with its %s replaced by an agent id: the Milan replay agent or one of its
-- copies (replay-milano-arpa-copy-<k>), a different one each request.
local copies = tonumber(os.getenv("HISTORY_COPIES") or "10")
local template = os.getenv("PATH_TEMPLATE")
local n = 0
request = function()
  n = n + 1
  local k = (n * 7) % copies
  local agent = k == 0 and "replay-milano-arpa" or ("replay-milano-arpa-copy-" .. k)
  return wrk.format("GET", string.format(template, agent))
end
dofile(os.getenv("TWIN_LUA_DIR") .. "/report.lua")

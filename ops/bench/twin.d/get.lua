-- GET one telemetry entity by id, a different replica site each request.
local sites = tonumber(os.getenv("TWIN_SITES") or "25000")
local kinds = {"WeatherObserved:replica-%d:arpa-senato", "AirQualityObserved:replica-%d:multisensor",
               "TrafficFlowObserved:replica-%d:atr301", "DeviceMeasurement:replica-%d:eno-3b06"}
local n = 0
request = function()
  n = n + 1
  local path = "/ngsi-ld/v1/entities/urn:ngsi-ld:" .. string.format(kinds[(n % 4) + 1], (n * 7919) % sites)
  return wrk.format("GET", path)
end
dofile(os.getenv("TWIN_LUA_DIR") .. "/report.lua")

-- POST /entityOperations/upsert with 1,000 client entities (parking sensors around Milan) per request,
-- cycling over 20 bodies (so a request both creates and replaces entities).
local bodies = {}
for b = 0, 19 do
  local items = {}
  for i = 0, 999 do
    local id = b * 1000 + i
    items[#items + 1] = string.format(
      '{"id":"urn:ngsi-ld:ParkingSpot:bench-%d","type":"ParkingSpot","status":{"type":"Property","value":"%s"},' ..
      '"category":{"type":"Property","value":["onStreet"]},"location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[%.5f,%.5f]}}}',
      id, (id % 3 == 0) and "occupied" or "free", 9.10 + (id % 200) * 0.001, 45.42 + math.floor(id / 200) * 0.001)
  end
  bodies[b + 1] = "[" .. table.concat(items, ",") .. "]"
end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/ngsi-ld/v1/entityOperations/upsert", {["Content-Type"] = "application/json"}, bodies[(n % 20) + 1])
end
dofile(os.getenv("TWIN_LUA_DIR") .. "/report.lua")

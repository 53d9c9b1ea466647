-- 100 events per POST, all to one stream (appended atomically), a stream per request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local events = {}
for i = 1, 100 do
  events[i] = string.format('{"streamId":"STREAM","eventType":"Measured","eventData":{"i":%d}}', i)
end
local template = "[" .. table.concat(events, ",") .. "]"
local n = 0
request = function()
  n = n + 1
  local body = string.gsub(template, "STREAM", "batch-" .. (n % 1000))
  return wrk.format(nil, "/api/events", nil, body)
end

-- One event per POST, spread over 1000 streams.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local body = string.format(
    '{"streamId":"load-%d","eventType":"Measured","eventData":{"n":%d,"note":"single"}}',
    n % 1000, n)
  return wrk.format(nil, "/api/events", nil, body)
end

-- Strong-consistency queries of the read model, over the streams the single POSTs wrote.
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", string.format("/api/queries/load-%d?consistency=strong", n % 1000))
end

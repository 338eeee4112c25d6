-- wrk script: email code sends to the delivery server, each to an address of its own.
-- Arguments: the project's secret key, and a prefix that keeps this run's addresses apart.
local n, key, prefix = 0, "", ""

function init(args)
  key = args[1]
  prefix = args[2]
end

function request()
  n = n + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
  }
  local body = string.format(
    '{"channel":"email","destination":"%s%d@bench.test","code":"123456"}', prefix, n)
  return wrk.format("POST", "/api/v1/otp/send", headers, body)
end

-- wrk script: a sign-in storm. Each request verifies the next seeded code, from the
-- address seeded with it (X-Forwarded-For; the apps trust loopback as their proxy).
-- Arguments: the codes file ("email code address" per line) and the Origin to send. Once
-- the codes run out the last one is sent again and fails, which the bench reports: wrk
-- times a run by its whole duration, so the codes must outlast it.
local codes, sent, origin = {}, 0, ""

function init(args)
  for line in io.lines(args[1]) do
    local email, code, address = line:match("^(%S+) (%S+) (%S+)$")
    codes[#codes + 1] = { email, code, address }
  end
  origin = args[2]
end

function request()
  sent = sent + 1
  local c = codes[sent] or codes[#codes]
  local headers = {
    ["Content-Type"] = "application/json",
    ["Origin"] = origin,
    ["X-Forwarded-For"] = c[3],
  }
  local body = string.format('{"email":"%s","code":"%s"}', c[1], c[2])
  return wrk.format("POST", "/api/auth/verify-otp", headers, body)
end

-- wrk: POST a different pre-signed payload on every request. Each line of the file is "<signature> <body>".
local signatures, bodies, next_one = {}, {}, 0

function init(args)
  for line in io.lines(args[1]) do
    local signature, body = line:match("^(%x+) (.*)$")
    signatures[#signatures + 1], bodies[#bodies + 1] = signature, body
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["User-Agent"] = "SharpAPIWebhook/1.0"
end

function request()
  next_one = next_one % #bodies + 1
  wrk.headers["X-Signature"] = signatures[next_one]
  return wrk.format(nil, nil, nil, bodies[next_one])
end

-- The booking path: book one free seat, then cancel that booking, over and over.
-- Arguments: the showtime id and a comma-separated list of its free seats.
-- A seat goes to the back of the queue when it is booked; its cancellation is
-- sent with the next request, long before the queue comes round to it again,
-- so every request should succeed (a 409 would show up as an error).

local showtime_id
local free_seats = {}
local to_cancel = {}

function init(args)
  showtime_id = args[1]
  for label in string.gmatch(args[2], "[^,]+") do
    table.insert(free_seats, label)
  end
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  if #to_cancel > 0 then
    return wrk.format("DELETE", "/reservations/" .. table.remove(to_cancel, 1))
  end
  local label = table.remove(free_seats, 1)
  table.insert(free_seats, label)
  local body = string.format('{"showtime_id": %s, "seats": ["%s"]}', showtime_id, label)
  return wrk.format("POST", "/reservations", nil, body)
end

function response(status, headers, body)
  if status == 201 then
    local id = string.match(headers["Location"] or "", "(%d+)$")
    if id then
      table.insert(to_cancel, id)
    end
  end
end

-- The booking path: book one free seat, then cancel that booking, over and over.
-- (bench/seats.lua comes first.) The cancellation is sent with the next request.

local to_cancel = {}

function request()
  if #to_cancel > 0 then
    return wrk.format("DELETE", "/reservations/" .. table.remove(to_cancel, 1))
  end
  return wrk.format("POST", "/reservations", nil, next_seat_body())
end

function response(status, headers, body)
  if status == 201 then
    local id = string.match(headers["Location"] or "", "(%d+)$")
    if id then
      table.insert(to_cancel, id)
    end
  else
    seat_freed()
  end
end

-- The checkout path: hold one free seat, confirm the hold, cancel the booking, over and over.
-- (bench/seats.lua comes first.) Each step is sent as soon as the answer of the one
-- before it is in, by whichever connection asks next: a 201 for a hold queues its
-- confirmation, a 201 for the confirmation queues its cancellation.

local to_confirm = {}
local to_cancel = {}

function request()
  if #to_cancel > 0 then
    return wrk.format("DELETE", "/reservations/" .. table.remove(to_cancel, 1))
  end
  if #to_confirm > 0 then
    local body = string.format('{"hold_id": %s}', table.remove(to_confirm, 1))
    return wrk.format("POST", "/reservations", nil, body)
  end
  return wrk.format("POST", "/holds", nil, next_seat_body())
end

function response(status, headers, body)
  if status == 201 then
    local location = headers["Location"] or ""
    local hold = string.match(location, "/holds/(%d+)$")
    local reservation = string.match(location, "/reservations/(%d+)$")
    if hold then
      table.insert(to_confirm, hold)
    elseif reservation then
      table.insert(to_cancel, reservation)
    end
  else
    seat_freed()
  end
end

-- Prepended to booking.lua and checkout.lua: the showtime and its free seats, in turn.
-- Arguments: the showtime id and a comma-separated list of its free seats.
-- A seat leaves the queue when it is taken and goes to its back when a cancellation
-- is answered (the oldest seat in use: answers may come in another order, but the seat
-- then waits a whole round of the queue), so every request should succeed (a 409
-- would show up as an error).

local showtime_id
local free_seats = {}
local in_use = {}  -- seats taken and not yet given back, oldest first

function init(args)
  showtime_id = args[1]
  for label in string.gmatch(args[2], "[^,]+") do
    table.insert(free_seats, label)
  end
  wrk.headers["Content-Type"] = "application/json"
end

-- The body naming the next free seat of the showtime.
local function next_seat_body()
  local label = table.remove(free_seats, 1)
  table.insert(in_use, label)
  return string.format('{"showtime_id": %s, "seats": ["%s"]}', showtime_id, label)
end

-- A cancellation was answered (or a request failed): the oldest seat in use is free again.
local function seat_freed()
  if #in_use > 0 then
    table.insert(free_seats, table.remove(in_use, 1))
  end
end

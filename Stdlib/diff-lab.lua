-- diff-lab.lua — per VM of a lab, how much changed since its `clean` checkpoint: what each student
-- touched, disk by disk.
--
-- Arguments:
--   NAME or --lab NAME  the lab (default: classroom)
--   --checkpoint NAME   compare with this checkpoint (default: clean)
--   --ranges            list the changed byte ranges too
--
-- Example:
--   vmlab run diff-lab.lua classroom --ranges

local lab = require "vmlab.lab"

local usage = "usage: vmlab run diff-lab.lua [NAME | --lab NAME] [--checkpoint NAME] [--ranges]"
local options = lab.options(arg, { lab = lab.defaultName, checkpoint = "clean", ranges = false }, usage)

local group = lab.find(options.lab)
if not group then error("no lab '" .. options.lab .. "'; `vmlab lab list` shows the labs", 0) end

local rows = {}
local details = {}
for _, vm in ipairs(group.vms) do
  local checkpoint
  for _, candidate in ipairs(vm:checkpoints()) do
    if candidate.name == options.checkpoint then checkpoint = candidate end
  end
  if not checkpoint then
    rows[#rows + 1] = { vm.name, "-", "no checkpoint '" .. options.checkpoint .. "'" }
  else
    for _, disk in ipairs(checkpoint:diff()) do
      rows[#rows + 1] = { vm.name, disk.disk, lab.bytes(disk.changedBytes), #disk.ranges }
      if options.ranges then
        for _, range in ipairs(disk.ranges) do
          details[#details + 1] = string.format("%s disk %d: %d..%d", vm.name, disk.disk, range.offset,
            range.offset + range.length)
        end
      end
    end
  end
end
lab.printTable({ "VM", "DISK", "CHANGED", "RANGES" }, rows)
for _, line in ipairs(details) do print(line) end

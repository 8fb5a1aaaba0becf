-- teardown-lab.lua — remove a lab: its VMs (turned off first), their checkpoints and disk files,
-- and the lab itself. Templates that linked clones shared stay in the library.
--
-- Arguments:
--   --lab NAME   the lab (default: classroom)
--   --what-if    print what would be removed and change nothing
--
-- Example:
--   vmlab run teardown-lab.lua --lab classroom --what-if

local lab = require "vmlab.lab"

local usage = "usage: vmlab run teardown-lab.lua [--lab NAME] [--what-if]"
local options = lab.options(arg, { lab = lab.defaultName, whatIf = false }, usage)

local group = lab.find(options.lab)
if not group then error("no lab '" .. options.lab .. "'; `vmlab lab list` shows the labs", 0) end

-- A VM another lab also holds stays: removing it would empty part of that lab behind its back.
local heldElsewhere = {}
for _, other in ipairs(vmlab.labs()) do
  if other.name ~= group.name then
    for _, vm in ipairs(other.vms) do
      heldElsewhere[vm.name] = heldElsewhere[vm.name] or {}
      table.insert(heldElsewhere[vm.name], other.name)
    end
  end
end

local rows, removed, kept = {}, {}, {}
for _, vm in ipairs(group.vms) do
  local files = 0
  for _, disk in ipairs(vm.disks) do files = files + #disk.chain end
  local others = heldElsewhere[vm.name]
  local fate = others and ("kept: also in lab " .. table.concat(others, ", ")) or "removed"
  rows[#rows + 1] = { vm.name, vm.state, #vm:checkpoints(), files, fate }
  if others then kept[#kept + 1] = vm else removed[#removed + 1] = vm end
end
lab.printTable({ "VM", "STATE", "CHECKPOINTS", "DISK FILES", "" }, rows)

local keptNote = #kept > 0 and string.format("; %d VM(s) kept because another lab holds them", #kept) or ""
if options.whatIf then
  print(string.format("would remove lab '%s' and %d of its %d VMs%s (nothing was changed)",
    group.name, #removed, #group.vms, keptNote))
  return
end
for _, vm in ipairs(removed) do
  vm:turnOff()
  vm:remove()
end
group:remove()
print(string.format("removed lab '%s' and %d of its %d VMs%s", group.name, #removed, #rows, keptNote))

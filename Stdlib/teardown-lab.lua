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

local rows = {}
for _, vm in ipairs(group.vms) do
  local files = 0
  for _, disk in ipairs(vm.disks) do files = files + #disk.chain end
  rows[#rows + 1] = { vm.name, vm.state, #vm:checkpoints(), files }
end
lab.printTable({ "VM", "STATE", "CHECKPOINTS", "DISK FILES" }, rows)

if options.whatIf then
  print(string.format("would remove lab '%s' and its %d VMs (nothing was changed)", group.name, #group.vms))
  return
end
for _, vm in ipairs(group.vms) do
  vm:turnOff()
  vm:remove()
end
group:remove()
print(string.format("removed lab '%s' and its %d VMs", group.name, #rows))

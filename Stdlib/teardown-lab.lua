-- teardown-lab.lua — remove a lab: its VMs (turned off first), their checkpoints and disk files,
-- and the lab itself. Templates that linked clones shared stay in the library. A VM that another
-- lab also holds is kept (and said so): removing it would break that lab.
--
-- Arguments:
--   NAME or --lab NAME   the lab to remove (no default: removing is never a guess)
--   --what-if            print what would be removed and change nothing
--
-- Example:
--   vmlab run teardown-lab.lua classroom --what-if

local lab = require "vmlab.lab"

local usage = "usage: vmlab run teardown-lab.lua NAME [--what-if]   (or --lab NAME)"
local options = lab.options(arg, { lab = "", whatIf = false }, usage)
if options.lab == "" then lab.usageError("name the lab to remove", usage) end

local group = lab.find(options.lab)
if not group then error("no lab '" .. options.lab .. "'; `vmlab lab list` shows the labs; nothing was changed", 0) end

local rows, removable, kept = {}, {}, {}
for _, vm in ipairs(group.vms) do
  local files = 0
  for _, disk in ipairs(vm.disks) do files = files + #disk.chain end
  local others = lab.otherHolders(vm.name, group.name)
  local fate = "remove"
  if #others > 0 then
    fate = "keep (also in lab " .. table.concat(others, ", ") .. ")"
    kept[#kept + 1] = vm
  else
    removable[#removable + 1] = vm
  end
  rows[#rows + 1] = { vm.name, vm.state, #vm:checkpoints(), files, fate }
end
lab.printTable({ "VM", "STATE", "CHECKPOINTS", "DISK FILES", "WHAT HAPPENS" }, rows)

local keptNote = #kept > 0 and string.format("; %d VM%s kept: other labs hold them", #kept, #kept > 1 and "s" or "") or ""
if options.whatIf then
  print(string.format("would remove lab '%s' and %d of its %d VMs%s (nothing was changed)", group.name, #removable,
    #group.vms, keptNote))
  return
end
for _, vm in ipairs(removable) do
  vm:turnOff()
  vm:remove()
end
group:remove()
print(string.format("removed lab '%s' and %d of its %d VMs%s", group.name, #removable, #rows, keptNote))

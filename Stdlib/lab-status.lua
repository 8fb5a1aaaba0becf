-- lab-status.lua — what a lab looks like now: its VMs, their state, their checkpoints and the
-- space each checkpoint holds.
--
-- Arguments:
--   NAME or --lab NAME   the lab (default: classroom)
--   --all                every VM of the library, whether in a lab or not
--
-- Example:
--   vmlab run lab-status.lua classroom

local lab = require "vmlab.lab"

local usage = "usage: vmlab run lab-status.lua [NAME | --lab NAME | --all]"
local options = lab.options(arg, { lab = lab.defaultName, all = false }, usage)
if options.all and options.given.lab then lab.usageError("--all shows every VM; leave out the lab", usage) end

local vms
if options.all then
  vms = vmlab.vms()
  print(string.format("library: %d VMs", #vms))
else
  local group = lab.find(options.lab)
  if not group then error("no lab '" .. options.lab .. "'; `vmlab lab list` shows the labs", 0) end
  vms = group.vms
  print(string.format("lab '%s': %d VMs", group.name, #vms))
end

local rows = {}
for _, vm in ipairs(vms) do
  local checkpoints = vm:checkpoints()
  if #checkpoints == 0 then
    rows[#rows + 1] = { vm.name, vm.state, vm.clusterHost or vm.host, #vm.disks, "-", "", "" }
  end
  for index, checkpoint in ipairs(checkpoints) do
    rows[#rows + 1] = {
      index == 1 and vm.name or "", index == 1 and vm.state or "", index == 1 and (vm.clusterHost or vm.host) or "",
      index == 1 and #vm.disks or "",
      checkpoint.name, checkpoint.created, lab.bytes(checkpoint.space),
    }
  end
end
lab.printTable({ "VM", "STATE", "HOST", "DISKS", "CHECKPOINT", "CREATED", "SPACE" }, rows)

-- build-lab.lua — build a lab of VMs, start them and checkpoint them all as `clean`.
--
-- Arguments:
--   NAME or --lab NAME  the lab's name (default: classroom); an existing lab is never replaced
--   --vms N           how many VMs (default: 4)
--   --prefix TEXT     VM names are TEXT01, TEXT02, … (default: student)
--   --disks LIST      disk sizes per VM, comma separated (default: 8G)
--   --linked          linked clones of one template disk instead of full VMs
--   --template PATH   the template VHD for linked clones (default: a blank disk of the first size)
--   --additions       the guests have additions (checkpoints shut them down gracefully)
--   --host HOST       the host that runs the VMs: simulated (default) or qemu (real guests)
--   --image NAME      boot this built image (`vmlab image build tiny`): disk 1 is a linked clone of
--                     its root disk and --disks adds more (default none); implies --host qemu
--   --memory SIZE     each VM's memory (default 1G; 256M is plenty for the tiny image)
--   --accelerator A  auto (default: KVM where it works, else TCG), kvm or tcg
--   --host-kind KIND  virtual-server or hypervisor (default: hypervisor with an image, whose online
--                     checkpoints keep the guests' memory; else the library's)
--   --definition FILE a lab definition: a Lua file returning { name=, vms=, prefix=, disks={…},
--                     template=, linked=, additions= }; options given on the command line win
--
-- Example:
--   vmlab run build-lab.lua --vms 30 --prefix student --disks 8G,2G --linked
--   vmlab run build-lab.lua --vms 4 --host qemu --image tiny --memory 256M

local lab = require "vmlab.lab"

local usage = [==[
usage: vmlab run build-lab.lua [NAME | --lab NAME] [--vms N] [--prefix TEXT] [--disks 8G,2G]
                               [--linked] [--template PATH] [--additions] [--definition FILE]
                               [--host simulated|qemu] [--image NAME] [--memory SIZE] [--host-kind KIND]
                               [--accelerator auto|kvm|tcg]]==]
local options = lab.options(arg, {
  lab = "", vms = 0, prefix = "", disks = "", linked = false, template = "", additions = false, definition = "",
  host = "", image = "", memory = "", hostKind = "", accelerator = "",
}, usage)
if options.image ~= "" and (options.linked or options.template ~= "") then
  lab.usageError("--image makes each VM a linked clone of the image's root disk: --linked and --template do not go "
    .. "with it", usage)
end
if options.image ~= "" and options.host == "simulated" then
  lab.usageError("--image boots a real guest, which the simulated host cannot run; give --host qemu", usage)
end
if options.vms < 0 or (options.given.vms and options.vms == 0) then
  lab.usageError("--vms takes a number of VMs from 1 up, not " .. options.vms, usage)
end

local spec = options.definition ~= "" and lab.definition(options.definition) or {}
spec.name = options.lab ~= "" and options.lab or spec.name or lab.defaultName
spec.vms = options.vms > 0 and options.vms or spec.vms or 4
spec.prefix = options.prefix ~= "" and options.prefix or spec.prefix or "student"
spec.image = options.image ~= "" and options.image or spec.image
spec.host = options.host ~= "" and options.host or spec.host or (spec.image and "qemu" or nil)
spec.memory = options.memory ~= "" and options.memory or spec.memory
spec.accelerator = options.accelerator ~= "" and options.accelerator or spec.accelerator
spec.hostKind = options.hostKind ~= "" and options.hostKind or spec.hostKind or (spec.image and "hypervisor" or nil)
spec.disks = options.disks ~= "" and lab.list(options.disks) or spec.disks or (spec.image and {} or { "8G" })
spec.linked = options.linked or spec.linked
spec.template = options.template ~= "" and options.template or spec.template
spec.additions = options.additions or spec.additions

local started = lab.now()
io.write(string.format("building lab '%s': %d VMs (%s%s, %s)\n", spec.name, spec.vms, spec.prefix,
  spec.image and (", image " .. spec.image .. " on " .. spec.host) or (spec.linked and ", linked clones" or ""),
  #spec.disks > 0 and ("disks " .. table.concat(spec.disks, ",")) or "no extra disks"))
local group = lab.build(spec)
local rows = {}
for _, vm in ipairs(group.vms) do
  local checkpoint = vm:mostRecentCheckpoint()
  rows[#rows + 1] = { vm.name, vm.state, vm.clusterHost or vm.hostName, #vm.disks, checkpoint and checkpoint.name or "-" }
end
lab.printTable({ "VM", "STATE", "HOST", "DISKS", "CHECKPOINT" }, rows)
print(string.format("lab '%s' ready in %s: %d VMs checkpointed as 'clean'", group.name,
  lab.seconds(lab.now() - started), #group.vms))

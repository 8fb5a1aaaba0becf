-- reset-lab.lua — the everyday command: bring every VM of a lab back to its `clean` checkpoint.
--
-- All the lab's VMs are restored at once (and only they; other VMs are never touched); running
-- VMs run again afterwards; a real guest (a qemu VM with its agent) counts as back once its agent
-- answers, which the script waits for and reports. On a fresh library with no lab, it first builds the demo lab
-- (4 VMs, see build-lab.lua) and says so.
--
-- Arguments:
--   NAME or --lab NAME  the lab (default: classroom)
--   --checkpoint NAME   the checkpoint to restore (default: clean)
--   --most-recent       each VM's most recent checkpoint instead
--
-- Example:
--   vmlab run reset-lab.lua classroom

local lab = require "vmlab.lab"

local usage = "usage: vmlab run reset-lab.lua [NAME | --lab NAME] [--checkpoint NAME | --most-recent]"
local options = lab.options(arg, { lab = lab.defaultName, checkpoint = "clean", mostRecent = false }, usage)
if options.mostRecent and options.given.checkpoint then
  lab.usageError("--checkpoint and --most-recent choose the checkpoint two ways; give one", usage)
end

local group = lab.find(options.lab)
if not group then
  if #vmlab.labs() > 0 or options.given.lab then
    error("no lab '" .. options.lab .. "'; `vmlab lab list` shows the labs, and vmlab run build-lab.lua --lab "
      .. options.lab .. " builds one; nothing was changed", 0)
  end
  print("This library has no lab yet: building the demo lab '" .. options.lab .. "' (4 VMs) first.")
  group = lab.build { name = options.lab, vms = 4, prefix = "student", disks = { "8G" } }
end

local started = lab.now()
local results = group:restore(options.mostRecent and { mostRecent = true } or options.checkpoint)
-- A restored real guest is back when its agent answers (from saved memory in about a second, a
-- cold boot in 10-20 s under TCG).
local answered = {}
for _, vm in ipairs(lab.waitForGuests(group.vms)) do answered[vm.name:lower()] = lab.now() - started end
local rows = {}
for _, result in ipairs(results) do
  local happened = result.action == "none" and "was stopped" or result.action
  local agent = answered[result.vm:lower()]
  rows[#rows + 1] = { result.vm, result.checkpoint, happened, result.state, lab.seconds(result.seconds),
    agent and ("answers after " .. lab.seconds(agent)) or "-" }
end
lab.printTable({ "VM", "CHECKPOINT", "WHAT HAPPENED", "NOW", "TIME", "GUEST AGENT" }, rows)
print(string.format("lab '%s': %d VMs restored in %s", group.name, #results, lab.seconds(lab.now() - started)))

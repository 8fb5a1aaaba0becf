-- vmlab.lab: what the bundled lab scripts share.
--
--   local lab = require "vmlab.lab"
--   local options = lab.options(arg, { lab = "classroom", vms = 4, linked = false }, usage)
--   local l = lab.build { name = "classroom", vms = 4, prefix = "student", disks = { "8G" } }
--   lab.printTable({ "VM", "STATE" }, rows)

local lab = {}

-- The lab the everyday scripts work on when none is named.
lab.defaultName = "classroom"

-- Stops the script before it changed anything: the problem and the usage on standard error, exit
-- status 2 (a usage error, as vmlab's own). In the sandbox, which has no io or os, an error.
function lab.usageError(problem, usage)
  if io and os then
    io.stderr:write(arg and arg[0] and (arg[0]:match("[^/]+$") .. ": ") or "", problem, "\n\n", usage, "\n")
    os.exit(2)
  end
  error(problem .. "\n\n" .. usage, 0)
end

-- Parses `--name value`, `--name=value` and `--flag` arguments against `defaults` (a table of
-- option = default value; a boolean default makes a flag, an integer default takes integers only).
-- When `defaults` has a `lab` option, the lab may also be given as one bare argument:
-- `reset-lab.lua class1` is `reset-lab.lua --lab class1`. Anything else it does not understand (an
-- unknown option, a second bare word, an option given twice, a value of the wrong kind) stops the
-- script with its usage before it changes anything; `--help` prints the usage and exits 0.
-- Returns the options table; `options.given[name]` says whether the command line set it.
function lab.options(args, defaults, usage)
  local options = { given = {} }
  for name, value in pairs(defaults) do options[name] = value end
  local function set(key, value, spelled)
    if options.given[key] then lab.usageError(spelled .. " is given twice", usage) end
    options.given[key] = true
    options[key] = value
  end
  local index = 1
  while args[index] ~= nil do
    local word = args[index]
    if word == "--help" or word == "-h" then
      if not os then error(usage, 0) end  -- the sandbox has no os.exit: stop with the usage
      print(usage)
      os.exit(0)
    end
    local name, value = word:match("^%-%-([%w-]+)=(.*)$")
    name = name or word:match("^%-%-([%w-]+)$")
    if not name then
      if word:sub(1, 1) == "-" and word ~= "-" then
        lab.usageError("unknown option " .. word, usage)
      elseif defaults.lab == nil then
        lab.usageError("unexpected argument '" .. word .. "' (this script takes options only)", usage)
      elseif options.given.lab then
        lab.usageError("unexpected argument '" .. word .. "': the lab is '" .. options.lab .. "' already", usage)
      end
      set("lab", word, "the lab")
    else
      local key = name:gsub("-(%w)", string.upper)  -- --most-recent -> mostRecent
      local default = defaults[key]
      if default == nil or key == "given" then lab.usageError("unknown option --" .. name, usage) end
      if type(default) == "boolean" then
        if value == nil or value == "true" or value == "yes" then
          set(key, true, "--" .. name)
        elseif value == "false" or value == "no" then
          set(key, false, "--" .. name)
        else
          lab.usageError("--" .. name .. " is a flag: give it alone, or =true or =false, not '" .. value .. "'", usage)
        end
      else
        if value == nil then
          index = index + 1
          value = args[index]
          if value == nil then lab.usageError("--" .. name .. " needs a value", usage) end
        end
        if math.type(default) == "integer" then
          local number = math.tointeger(tonumber(value))
          if not number then lab.usageError("--" .. name .. " takes a whole number, not '" .. value .. "'", usage) end
          value = number
        elseif type(default) == "number" then
          local number = tonumber(value)
          if not number then lab.usageError("--" .. name .. " takes a number, not '" .. value .. "'", usage) end
          value = number
        end
        set(key, value, "--" .. name)
      end
    end
    index = index + 1
  end
  return options
end

-- "8G,2G" -> { "8G", "2G" }
function lab.list(text)
  local items = {}
  for item in tostring(text):gmatch("[^,%s]+") do items[#items + 1] = item end
  return items
end

-- Loads a lab definition file: a Lua file that returns a table
--   return { name = "web", vms = 10, prefix = "web", disks = { "8G", "2G" }, template = "base.vhd",
--            linked = true, additions = true, hostKind = "hypervisor" }
function lab.definition(path)
  local chunk, problem = loadfile(path, "t", {})
  if not chunk then error("cannot read the lab definition " .. path .. ": " .. problem, 0) end
  local definition = chunk()
  if type(definition) ~= "table" then error("the lab definition " .. path .. " must return a table", 0) end
  return definition
end

-- The names of a lab's VMs: prefix01, prefix02, ...
function lab.vmNames(prefix, count)
  local names = {}
  local width = math.max(2, #tostring(count))
  for index = 1, count do names[index] = string.format("%s%0" .. width .. "d", prefix, index) end
  return names
end

-- The lab called `name`, or nil when there is none.
function lab.find(name)
  for _, existing in ipairs(vmlab.labs()) do
    if existing.name:lower() == name:lower() then return existing end
  end
  return nil
end

-- The labs other than `except` that hold the VM named `vmName`, by name.
function lab.otherHolders(vmName, except)
  local holders = {}
  for _, group in ipairs(vmlab.labs()) do
    if group.name:lower() ~= except:lower() then
      for _, vm in ipairs(group.vms) do
        if vm.name:lower() == vmName:lower() then holders[#holders + 1] = group.name end
      end
    end
  end
  return holders
end

-- Builds a lab: `count` VMs from `prefix`, each with the disks asked for (or linked clones of a
-- template disk), started, grouped as a lab, and checkpointed `clean` all at once. Returns the Lab.
--
-- It creates only: a lab or VM of the same name stops it before it changed anything. If a step
-- fails half way, what it created (VMs, the lab, a blank template) is removed again, and the error
-- goes on to the caller.
function lab.build(spec)
  local name = spec.name or lab.defaultName
  local count = spec.vms or 4
  local disks = spec.disks or { "8G" }
  local names = lab.vmNames(spec.prefix or "student", count)
  if lab.find(name) then
    error("lab '" .. name .. "' already exists; choose another name, or tear it down first (vmlab run teardown-lab.lua "
      .. name .. ")", 0)
  end
  local taken = {}
  for _, vmName in ipairs(names) do
    if vmlab.vm.exists(vmName) then taken[#taken + 1] = vmName end
  end
  if #taken > 0 then
    error(string.format("the lab's VM name%s %s already exist%s; choose another prefix, or remove %s first",
      #taken > 1 and "s" or "", table.concat(taken, ", "), #taken > 1 and "" or "s", #taken > 1 and "them" or "it"), 0)
  end

  local created, group, madeTemplate = {}, nil, nil
  local ok, problem = pcall(function()
    local template = spec.template
    if spec.linked and not template then
      -- A blank template of the first disk's size; the library keeps its own copy (named after
      -- it). A file of that name that is already there is someone's: take the next free name.
      local base = (os.getenv("TMPDIR") or "/tmp") .. "/" .. name .. "-template"
      local candidate, number = base .. ".vhd", 1
      local function exists(path)
        local file = io.open(path, "rb")
        if file then file:close() end
        return file ~= nil
      end
      while exists(candidate) do
        number = number + 1
        candidate = base .. "-" .. number .. ".vhd"
      end
      vmlab.disk.create { path = candidate, size = disks[1] }:close()
      madeTemplate = candidate
      template = madeTemplate
    end
    for _, vmName in ipairs(names) do
      local vm
      if spec.image then
        -- A real guest booting the image: disk 1 a linked clone of its root disk, `disks` extra.
        vm = vmlab.vm.create { name = vmName, host = spec.host or "qemu", image = spec.image, disks = disks,
          memory = spec.memory, hostKind = spec.hostKind, accelerator = spec.accelerator }
      elseif template then
        vm = vmlab.vm.create { name = vmName, from = template, linked = spec.linked, additions = spec.additions,
          host = spec.host, hostKind = spec.hostKind, memory = spec.memory, accelerator = spec.accelerator }
      else
        vm = vmlab.vm.create { name = vmName, disks = disks, additions = spec.additions, host = spec.host,
          hostKind = spec.hostKind, memory = spec.memory, accelerator = spec.accelerator }
      end
      created[#created + 1] = vm
      vm:start()
    end
    -- Real guests boot side by side; each is ready once its agent answers.
    lab.waitForGuests(created, spec.readyTimeout)
    if spec.prepare then
      for index, vm in ipairs(created) do spec.prepare(vm, index) end
    end
    group = vmlab.lab.create { name = name, vms = created }
    -- One job for the lab (listed by `vmlab job list`): the VMs are checkpointed in parallel, all
    -- or nothing.
    local job = group:checkpoint { name = spec.checkpoint or "clean", async = true }:wait()
    if job.status ~= "completed" then error(job.error, 0) end
  end)
  if madeTemplate then os.remove(madeTemplate) end
  if not ok then
    for _, vm in ipairs(created) do pcall(function() vm:turnOff() vm:remove() end) end
    if group then pcall(group.remove, group) end
    error(problem, 0)
  end
  return group
end

-- Whether vmlab can reach inside the VM's guest: a real host's VM with additions (an agent).
function lab.hasGuest(vm)
  return vm.additions and vm.hostName ~= "simulated"
end

-- Waits until the agent of every running VM with a real guest answers (at most `timeout` seconds
-- each, default 180: a boot under TCG takes 10-20 s, longer while others boot beside it). Returns
-- the VMs it waited for.
function lab.waitForGuests(vms, timeout)
  local waited = {}
  for _, vm in ipairs(vms) do
    if lab.hasGuest(vm) and vm.state == "running" then
      vm:waitReady { timeout = timeout or 180 }
      waited[#waited + 1] = vm
    end
  end
  return waited
end

-- Prints rows (arrays of values) under a header, in aligned columns.
function lab.printTable(header, rows)
  local widths = {}
  for column, title in ipairs(header) do widths[column] = #title end
  for _, row in ipairs(rows) do
    for column = 1, #header do
      widths[column] = math.max(widths[column], #tostring(row[column] or ""))
    end
  end
  local function line(cells)
    local parts = {}
    for column = 1, #header do
      local text = tostring(cells[column] or "")
      parts[column] = column < #header and text .. string.rep(" ", widths[column] - #text) or text
    end
    print(table.concat(parts, "  "))
  end
  line(header)
  for _, row in ipairs(rows) do line(row) end
end

-- "1.25 s" or "340 ms".
function lab.seconds(value)
  if value >= 1 then return string.format("%.2f s", value) end
  return string.format("%.0f ms", value * 1000)
end

-- Bytes as people read them.
function lab.bytes(count)
  local units = { "bytes", "KiB", "MiB", "GiB", "TiB" }
  local unit = 1
  while count >= 1024 and unit < #units do
    count = count / 1024
    unit = unit + 1
  end
  if unit == 1 then return string.format("%d bytes", count) end
  return string.format("%.1f %s", count, units[unit])
end

-- A wall clock in seconds (os.clock counts CPU time, not waiting).
function lab.now()
  return vmlab.clock and vmlab.clock() or os.time()
end

return lab

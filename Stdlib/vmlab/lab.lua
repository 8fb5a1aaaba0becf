-- vmlab.lab: what the bundled lab scripts share.
--
--   local lab = require "vmlab.lab"
--   local options = lab.options(arg, { vms = 4, prefix = "student", linked = false }, usage)
--   local l = lab.build { name = "classroom", vms = 4, prefix = "student", disks = { "8G" } }
--   lab.printTable({ "VM", "STATE" }, rows)

local lab = {}

-- The lab the everyday scripts work on when none is named.
lab.defaultName = "classroom"

-- Parses `--name value`, `--name=value` and `--flag` arguments against `defaults` (a table of
-- option = default value; a boolean default makes a flag). Unknown options and `--help` print
-- `usage` and exit. Returns the options table, with positional arguments in its array part.
function lab.options(args, defaults, usage)
  local options = {}
  for name, value in pairs(defaults) do options[name] = value end
  local index = 1
  while args[index] do
    local word = args[index]
    if word == "--help" or word == "-h" then
      print(usage)
      os.exit(0)
    end
    local name, value = word:match("^%-%-([%w-]+)=(.*)$")
    name = name or word:match("^%-%-([%w-]+)$")
    if not name then
      options[#options + 1] = word
    else
      local key = name:gsub("-(%w)", string.upper)  -- --most-recent -> mostRecent
      if defaults[key] == nil then
        io.stderr:write("unknown option --" .. name .. "\n\n" .. usage .. "\n")
        os.exit(2)
      end
      if type(defaults[key]) == "boolean" then
        options[key] = value == nil or value == "true" or value == "yes"
      else
        if value == nil then
          index = index + 1
          value = args[index]
          if value == nil then
            io.stderr:write("--" .. name .. " needs a value\n\n" .. usage .. "\n")
            os.exit(2)
          end
        end
        if type(defaults[key]) == "number" then
          local number = tonumber(value)
          if not number then
            io.stderr:write("--" .. name .. " takes a number, not '" .. value .. "'\n")
            os.exit(2)
          end
          value = number
        end
        options[key] = value
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

-- Builds a lab: `count` VMs from `prefix`, each with the disks asked for (or linked clones of a
-- template disk), started, grouped as a lab, and checkpointed `clean` all at once. Returns the Lab.
function lab.build(spec)
  local name = spec.name or lab.defaultName
  local count = spec.vms or 4
  local disks = spec.disks or { "8G" }
  local template = spec.template
  local madeTemplate
  if spec.linked and not template then
    -- A blank template of the first disk's size; the library keeps its own copy (named after it).
    madeTemplate = (os.getenv("TMPDIR") or "/tmp") .. "/" .. name .. "-template.vhd"
    os.remove(madeTemplate)
    vmlab.disk.create { path = madeTemplate, size = disks[1] }:close()
    template = madeTemplate
  end
  local vms = {}
  for index, vmName in ipairs(lab.vmNames(spec.prefix or "student", count)) do
    local vm
    if template then
      vm = vmlab.vm.create { name = vmName, from = template, linked = spec.linked, additions = spec.additions }
    else
      vm = vmlab.vm.create { name = vmName, disks = disks, additions = spec.additions }
    end
    if spec.prepare then spec.prepare(vm, index) end
    vm:start()
    vms[#vms + 1] = vm
  end
  if madeTemplate then os.remove(madeTemplate) end
  local group = vmlab.lab.create { name = name, vms = vms }
  -- One job for the lab (listed by `vmlab job list`): the VMs are checkpointed in parallel, all or
  -- nothing.
  local job = group:checkpoint { name = spec.checkpoint or "clean", async = true }:wait()
  if job.status ~= "completed" then error(job.error, 0) end
  return group
end

-- The lab called `name`, or nil when there is none.
function lab.find(name)
  for _, existing in ipairs(vmlab.labs()) do
    if existing.name == name then return existing end
  end
  return nil
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

-- classroom.lua — the full loop the product is for, verified.
--
-- Builds a lab of N VMs and checkpoints it `clean`; then, K rounds of: students change their VMs
-- (guest writes of varying size at random places of every disk), the instructor restores the lab,
-- and every disk is checked to read back exactly its `clean` contents. Prints per-round timings and
-- a summary; exits 1 if any check fails. The lab is removed at the end unless --keep.
--
-- With --host qemu the VMs are real guests booting an image (default tiny): before `clean` each
-- guest writes a few files of random bytes; students (through the guest agent, `vm:exec`) add files
-- of their own, change one clean file and delete another; after every restore the guest itself
-- checks, through `vm:exec`, that the students' files are gone and that the clean files' SHA-256
-- and MD5 sums (busybox sha256sum/md5sum) match the ones taken before the checkpoint.
--
-- It works on a lab of its own: if a lab of that name exists, it stops before changing anything,
-- unless --replace asks it to remove that lab and its VMs first.
--
-- Arguments:
--   --vms N         VMs (default: 4)
--   --rounds K      rounds (default: 3)
--   --disks LIST    disk sizes per VM (default: 8G,8G)
--   --writes M      writes per disk per round (default: 4)
--   NAME or --lab NAME  the lab's name (default: classroom-loop)
--   --replace       remove an existing lab of that name (and its VMs) first
--   --seed S        random seed (default: 1)
--   --keep          keep the lab afterwards
--   --host HOST     simulated (default) or qemu (real guests)
--   --image NAME    with --host qemu: the image the guests boot (default: tiny)
--   --memory SIZE   with --host qemu: each guest's memory (default: 256M)
--   --accelerator A with --host qemu: auto (default), kvm or tcg
--
-- Example:
--   vmlab run classroom.lua --vms 20 --rounds 5
--   vmlab run classroom.lua --host qemu --vms 2 --rounds 2

local lab = require "vmlab.lab"

local usage = [==[
usage: vmlab run classroom.lua [NAME | --lab NAME] [--replace] [--vms N] [--rounds K] [--disks 8G,8G]
                               [--writes M] [--seed S] [--keep] [--host simulated|qemu] [--image NAME]
                               [--memory SIZE] [--accelerator auto|kvm|tcg]]==]
local options = lab.options(arg, {
  vms = 4, rounds = 3, disks = "8G,8G", writes = 4, lab = "classroom-loop", seed = 1, keep = false, replace = false,
  host = "simulated", image = "", memory = "", accelerator = "",
}, usage)
local realGuests = options.host ~= "simulated"
if not realGuests and (options.image ~= "" or options.memory ~= "" or options.accelerator ~= "") then
  lab.usageError("--image, --memory and --accelerator are for real guests: give --host qemu", usage)
end
for _, name in ipairs({ "vms", "rounds", "writes" }) do
  local least = name == "vms" and 1 or 0
  if options[name] < least then lab.usageError("--" .. name .. " cannot be less than " .. least, usage) end
end
if #lab.list(options.disks) == 0 then lab.usageError("--disks needs at least one size, such as 8G", usage) end
math.randomseed(options.seed)

-- An existing lab of that name may be someone's work: only --replace removes it, and never a VM
-- another lab also holds.
local old = lab.find(options.lab)
if old and not options.replace then
  error(string.format("lab '%s' already exists (%d VMs); choose another name with --lab, or pass --replace to remove "
    .. "it and its VMs first; nothing was changed", old.name, #old.vms), 0)
end
if old then
  for _, vm in ipairs(old.vms) do
    local others = lab.otherHolders(vm.name, old.name)
    if #others > 0 then
      error(string.format("cannot replace lab '%s': its VM %s is also in lab %s; nothing was changed", old.name,
        vm.name, table.concat(others, ", ")), 0)
    end
  end
  print(string.format("--replace: removing lab '%s' and its %d VMs", old.name, #old.vms))
  for _, vm in ipairs(old.vms) do
    vm:turnOff()
    vm:remove()
  end
  old:remove()
end

local function simulatedLoop()
  local disks = lab.list(options.disks)
  local signature = function(vm, disk) return string.format("vmlab classroom %s disk %d\n", vm.name, disk) end

  local buildStarted = lab.now()
  local group = lab.build {
    name = options.lab, vms = options.vms, prefix = options.lab .. "-", disks = disks, additions = true,
    -- The "installed system": a signature at the start of every disk before the clean checkpoint.
    prepare = function(vm)
      vm:start()
      for disk = 1, #disks do vm:write(disk, 0, signature(vm, disk)) end
    end,
  }
  print(string.format("built lab '%s': %d VMs x %d disks, checkpointed 'clean' in %s", group.name, #group.vms, #disks,
    lab.seconds(lab.now() - buildStarted)))

  -- Where students write: random ranges inside the first 64 MiB of each disk (or the disk, if smaller).
  local function randomWrite(size)
    local span = math.min(size, 64 * 1024 * 1024)
    local length = math.random(1, 256) * 512 + math.random(0, 511)
    local offset = math.random(0, span - length - 1)
    return offset, length
  end

  local failures = 0
  local rows = {}
  local restoreTotal = 0
  for round = 1, options.rounds do
    local writeStarted = lab.now()
    local touched = {}
    for _, vm in ipairs(group.vms) do
      for disk = 1, #disks do
        local size = vm.disks[disk].size
        -- Remember what the clean disk holds where the student will write (all places first, as
        -- writes may overlap), then let the student change them.
        local planned = {}
        for _ = 1, options.writes do
          local offset, length = randomWrite(size)
          planned[#planned + 1] = { vm = vm, disk = disk, offset = offset, clean = vm:read(disk, offset, length) }
        end
        for _, change in ipairs(planned) do
          vm:write(disk, change.offset, string.rep(string.char(math.random(1, 255)), #change.clean))
          touched[#touched + 1] = change
        end
      end
    end
    local writeTime = lab.now() - writeStarted

    local restoreStarted = lab.now()
    group:restore("clean")
    local restoreTime = lab.now() - restoreStarted
    restoreTotal = restoreTotal + restoreTime

    local verifyStarted = lab.now()
    local bad = 0
    for _, change in ipairs(touched) do
      if change.vm:read(change.disk, change.offset, #change.clean) ~= change.clean then bad = bad + 1 end
    end
    for _, vm in ipairs(group.vms) do
      for disk = 1, #disks do
        local expected = signature(vm, disk)
        if vm:read(disk, 0, #expected) ~= expected then bad = bad + 1 end
      end
    end
    failures = failures + bad
    rows[#rows + 1] = {
      round, #touched, lab.seconds(writeTime), lab.seconds(restoreTime), lab.seconds(lab.now() - verifyStarted),
      bad == 0 and "ok" or (bad .. " FAILED"),
    }
    print(string.format("round %d: %d writes, restore %s, %s", round, #touched, lab.seconds(restoreTime),
      bad == 0 and "verified" or (bad .. " checks FAILED")))
  end
  return group, failures, rows, restoreTotal, string.format("%d VMs, %d disks each", #group.vms, #disks)
end

-- Real guests: files inside each guest, written and checked by the guest through its agent.
local function guestRun(vm, line, input)
  local result = vm:exec(line, { input = input, timeout = 120 })
  if result.status ~= 0 then
    error(string.format("in VM %s, `%s` exited %d: %s%s", vm.name, line, result.status, result.stdout, result.stderr), 0)
  end
  return result.stdout
end
local cleanFiles = { "/root/clean/notes.txt", "/root/clean/data.bin", "/root/clean/config" }

local function realLoop()
  local sums = {}  -- per VM: the sha256sum and md5sum lines of its clean files, taken before `clean`
  local buildStarted = lab.now()
  local group = lab.build {
    name = options.lab, vms = options.vms, prefix = options.lab .. "-", host = options.host,
    image = options.image ~= "" and options.image or "tiny", memory = options.memory ~= "" and options.memory or "256M",
    hostKind = "hypervisor", accelerator = options.accelerator ~= "" and options.accelerator or nil, disks = options.given.disks and lab.list(options.disks) or {},
    -- The "installed system": files of random bytes in every guest, synced before the checkpoint.
    prepare = function(vm)
      guestRun(vm, "mkdir -p /root/clean && head -c 3000 /dev/urandom > " .. cleanFiles[1] .. " && head -c 70000 "
        .. "/dev/urandom > " .. cleanFiles[2] .. " && echo 'hostname " .. vm.name .. "' > " .. cleanFiles[3] .. " && sync")
      local list = table.concat(cleanFiles, " ")
      sums[vm.name] = { sha256 = guestRun(vm, "sha256sum " .. list), md5 = guestRun(vm, "md5sum " .. list) }
    end,
  }
  print(string.format("built lab '%s': %d guests of image %s, checkpointed 'clean' in %s", group.name, #group.vms,
    options.image ~= "" and options.image or "tiny", lab.seconds(lab.now() - buildStarted)))

  local failures, rows, restoreTotal = 0, {}, 0
  for round = 1, options.rounds do
    local writeStarted = lab.now()
    local written = {}
    for _, vm in ipairs(group.vms) do
      local files = {}
      for index = 1, options.writes do
        files[index] = string.format("/root/student-r%d-%d.txt", round, index)
      end
      -- The student's own files, one clean file changed and another deleted.
      guestRun(vm, "for f in " .. table.concat(files, " ") .. "; do head -c $((512 + RANDOM)) /dev/urandom > $f; done; "
        .. "echo 'student was here' >> " .. cleanFiles[1] .. "; rm " .. cleanFiles[2] .. "; sync")
      written[vm.name] = files
    end
    local writeTime = lab.now() - writeStarted

    local restoreStarted = lab.now()
    group:restore("clean")
    lab.waitForGuests(group.vms)
    local restoreTime = lab.now() - restoreStarted
    restoreTotal = restoreTotal + restoreTime

    -- The guest checks itself: no student file left, every clean file's sums as before.
    local verifyStarted = lab.now()
    local bad = 0
    for _, vm in ipairs(group.vms) do
      local line = "for f in " .. table.concat(written[vm.name], " ") .. "; do if [ -e $f ]; then "
        .. "echo \"student file $f is still there\"; exit 3; fi; done; sha256sum -c - && printf '%s' '"
        .. sums[vm.name].md5 .. "' | md5sum -c -"
      local result = vm:exec(line, { input = sums[vm.name].sha256, timeout = 120 })
      if result.status ~= 0 then
        bad = bad + 1
        io.stderr:write(string.format("round %d, VM %s: the guest's check failed (exit %d):\n%s%s", round, vm.name,
          result.status, result.stdout, result.stderr))
      end
    end
    failures = failures + bad
    rows[#rows + 1] = {
      round, #group.vms * options.writes, lab.seconds(writeTime), lab.seconds(restoreTime),
      lab.seconds(lab.now() - verifyStarted), bad == 0 and "ok" or (bad .. " FAILED"),
    }
    print(string.format("round %d: %d student files, restore until every agent answers %s, %s", round,
      #group.vms * options.writes, lab.seconds(restoreTime), bad == 0 and "verified in the guests"
      or (bad .. " guests FAILED their check")))
  end
  return group, failures, rows, restoreTotal, string.format("%d guests; each checked its own files and sums",
    #group.vms)
end

local group, failures, rows, restoreTotal, what
if realGuests then
  group, failures, rows, restoreTotal, what = realLoop()
else
  group, failures, rows, restoreTotal, what = simulatedLoop()
end

print()
lab.printTable({ "ROUND", "WRITES", "WRITE", "RESTORE", "VERIFY", "RESULT" }, rows)
print(string.format("summary: %s, %d rounds; mean restore %s per round; %s", what, options.rounds,
  lab.seconds(restoreTotal / math.max(options.rounds, 1)),
  failures == 0 and (realGuests and "every guest found its clean files again" or "every disk read back its clean contents")
  or (failures .. " checks FAILED")))
print(string.format("restore-per-round-seconds %.6f", restoreTotal / math.max(options.rounds, 1)))

if not options.keep then
  for _, vm in ipairs(group.vms) do
    vm:turnOff()
    vm:remove()
  end
  group:remove()
end
os.exit(failures == 0 and 0 or 1)

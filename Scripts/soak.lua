-- Soak: one long-lived vmlab process drives VMS VMs round after round for SECONDS seconds: guest
-- writes, a checkpoint of every VM (parallel jobs), more writes, a restore of every VM (parallel
-- jobs), a read-back of what the checkpoint held, and a merge of the checkpoint (parallel jobs);
-- every fifth round also restores the whole lab to its first checkpoint in one bulk operation.
-- At the end of every round, with no job running, it counts its own open file descriptors and reads
-- its resident memory; it fails (exit 1) if a job failed, a read-back differs, a descriptor leaked,
-- or memory grew past the bound.
--
--   vmlab run --library DIR Scripts/soak.lua [SECONDS [VMS [RSS_GROWTH_KIB]]]
--
-- Scripts/soak runs it against a release build and then checks the catalog; the test suite runs a
-- short version (Tests/vmlabTests/SoakTests.swift).

local seconds = tonumber(arg[1]) or 180
local count = tonumber(arg[2]) or 50
-- Memory may grow this much (KiB) between the end of the first round (caches warm) and the end.
local rssBound = tonumber(arg[3]) or 16384

local function readLine(path, pattern)
  local file = assert(io.open(path))
  for line in file:lines() do
    local value = line:match(pattern)
    if value then
      file:close()
      return value
    end
  end
  file:close()
end

local pid = readLine("/proc/self/stat", "^(%d+)")

-- Open descriptors of this process, and what they are (listed by `ls`, whose pipe is left out).
local function descriptors()
  local list = assert(io.popen("ls -l /proc/" .. pid .. "/fd 2>/dev/null"))
  local targets = {}
  for line in list:lines() do
    local fd, target = line:match("(%d+) %-> (.*)$")
    if fd then targets[#targets + 1] = fd .. " -> " .. target end
  end
  list:close()
  return #targets - 1, targets
end

-- The count at a quiet moment: a descriptor that is gone a moment later (the engine's last job
-- thread finishing) is not a leak; one that stays is.
-- The first count has nothing to compare with: it is taken when two reads a moment apart agree.
local function steadyDescriptors(expected)
  local n, targets = descriptors()
  for _ = 1, 5 do
    if expected and n <= expected then break end
    os.execute("sleep 0.2")
    local again, now = descriptors()
    if not expected and again == n then break end
    n, targets = again, now
  end
  if expected and n > expected then print("descriptors now: " .. table.concat(targets, ", ")) end
  return n
end

local function rss() return tonumber(readLine("/proc/self/status", "^VmRSS:%s+(%d+)")) end
local function threads() return tonumber(readLine("/proc/self/status", "^Threads:%s+(%d+)")) end

local chunk = 65536
-- The bytes a round writes, distinct per VM, disk, round and phase.
local function pattern(round, index, slot, phase)
  local head = string.format("r%06d-vm%03d-d%d-%s|", round, index, slot, phase)
  return string.rep(head, chunk // #head + 1):sub(1, chunk)
end
local function where(round, slot) return ((round * 3 + slot) % 7) * 1048576 + 4096 end

local stats = { checkpoints = 0, restores = 0, merges = 0, bulkRestores = 0, writes = 0, reads = 0, failed = 0 }
local function waitAll(jobs, what)
  local _, failed = vmlab.wait(jobs)
  if failed > 0 then
    for _, job in ipairs(jobs) do
      if job.status == "failed" then print(string.format("FAILED %s job %d (%s): %s", what, job.id, job.target, job.error)) end
    end
    stats.failed = stats.failed + failed
  end
  return #jobs - failed
end

-- The VMs: half on a hypervisor host (online checkpoints with saved running state), half on a
-- virtual-server host, every other one with guest additions (shut down rather than turned off).
local vms = {}
for index = 1, count do
  local name = string.format("soak%03d", index)
  local vm
  if vmlab.vm.exists(name) then
    vm = vmlab.vm.get(name)
  else
    vm = vmlab.vm.create{
      name = name, disks = {"16M", "8M"}, additions = index % 4 < 2,
      host = index % 2 == 0 and "hypervisor" or "virtual-server",
    }
  end
  vm:start()
  vm:write(1, 0, pattern(0, index, 1, "base"))
  vms[index] = vm
end
local lab = vmlab.lab.create{name = "soak" .. os.time(), vms = vms}
lab:checkpoint("clean")

print(string.format("soak: %d VMs, %d s, pid %s", count, seconds, pid))
local started = os.time()
local round = 0
local first, last
repeat
  round = round + 1
  local vmList = vmlab.vms()
  for index, vm in ipairs(vms) do
    if vm.state ~= "running" then vm:start() end
    for slot = 1, 2 do
      vm:write(slot, where(round, slot), pattern(round, index, slot, "kept"))
      stats.writes = stats.writes + 1
    end
  end
  stats.checkpoints = stats.checkpoints + waitAll(vmList:checkpoint{name = "round" .. round, async = true}, "checkpoint")

  for index, vm in ipairs(vms) do
    if vm.state ~= "running" then vm:start() end
    for slot = 1, 2 do
      vm:write(slot, where(round, slot), pattern(round, index, slot, "lost"))
      stats.writes = stats.writes + 1
    end
  end
  local restores = {}
  for _, vm in ipairs(vms) do restores[#restores + 1] = vm:mostRecentCheckpoint():restore{async = true} end
  stats.restores = stats.restores + waitAll(restores, "restore")

  for index, vm in ipairs(vms) do
    for slot = 1, 2 do
      local got = vm:read(slot, where(round, slot), chunk)
      stats.reads = stats.reads + 1
      if got ~= pattern(round, index, slot, "kept") then
        error(string.format("round %d: %s disk %d does not read what its checkpoint held", round, vm.name, slot))
      end
    end
  end

  local merges = {}
  for _, vm in ipairs(vms) do merges[#merges + 1] = vm:mostRecentCheckpoint():merge{async = true} end
  stats.merges = stats.merges + waitAll(merges, "merge")

  if round % 5 == 0 then
    lab:restore("clean")
    stats.bulkRestores = stats.bulkRestores + 1
    for index, vm in ipairs(vms) do
      local got = vm:read(1, 0, chunk)
      stats.reads = stats.reads + 1
      if got ~= pattern(0, index, 1, "base") then
        error(string.format("round %d: %s does not read the lab's clean state after the bulk restore", round, vm.name))
      end
    end
  end

  collectgarbage()
  local sample = { fds = steadyDescriptors(first and first.fds), rss = rss(), threads = threads(), at = os.time() - started }
  first = first or sample
  print(string.format(
    "round %d at %ds: %d checkpoints, %d restores, %d merges, %d bulk restores, %d writes, %d reads, %d failed; fds %d, rss %d KiB, threads %d",
    round, sample.at, stats.checkpoints, stats.restores, stats.merges, stats.bulkRestores, stats.writes, stats.reads,
    stats.failed, sample.fds, sample.rss, sample.threads))
  io.stdout:flush()
  last = sample
until os.time() - started >= seconds

local operations = stats.checkpoints + stats.restores + stats.merges + stats.bulkRestores * count + stats.writes + stats.reads
print(string.format(
  "soak done: %d rounds in %d s, %d operations (%d checkpoints, %d restores, %d merges, %d bulk restores of %d VMs, %d writes, %d reads), %d failed jobs",
  round, os.time() - started, operations, stats.checkpoints, stats.restores, stats.merges, stats.bulkRestores, count,
  stats.writes, stats.reads, stats.failed))
print(string.format("soak fds: %d after round 1, %d at the end", first.fds, last.fds))
print(string.format("soak rss: %d KiB after round 1, %d KiB at the end (%+d KiB, bound %d)", first.rss, last.rss,
  last.rss - first.rss, rssBound))
local problems = {}
if stats.failed > 0 then problems[#problems + 1] = stats.failed .. " jobs failed" end
if last.fds > first.fds then problems[#problems + 1] = "file descriptors leaked: " .. first.fds .. " -> " .. last.fds end
if last.rss - first.rss > rssBound then problems[#problems + 1] = "memory grew by " .. (last.rss - first.rss) .. " KiB" end
if #problems > 0 then error("soak failed: " .. table.concat(problems, "; ")) end
print("soak passed")

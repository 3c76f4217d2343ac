package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// userHZ is the unit of utime/stime in /proc/<pid>/stat: USER_HZ, which the
// kernel fixes at 100 for user space on every architecture Go supports on
// Linux (whatever CONFIG_HZ is), so it needs no sysconf(_SC_CLK_TCK).
const userHZ = 100

// processCPU returns the CPU time (user + system, all threads, including
// threads that have exited) that process pid has used so far, from
// /proc/<pid>/stat. Its resolution is 1/userHZ s: measure over seconds.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("server CPU time of pid %d: %w", pid, err)
	}
	ticks, err := parseStatCPU(b)
	if err != nil {
		return 0, fmt.Errorf("server CPU time of pid %d: %w", pid, err)
	}
	return time.Duration(ticks) * (time.Second / userHZ), nil
}

// parseStatCPU returns utime+stime (fields 14 and 15 of proc(5)) from the
// text of /proc/<pid>/stat. The command name (field 2) is in parentheses
// and may itself hold spaces and parentheses, so fields are counted from
// the last ')'.
func parseStatCPU(stat []byte) (uint64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("malformed /proc stat: no command name")
	}
	fields := bytes.Fields(stat[end+1:]) // fields[0] is field 3 (state)
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("malformed /proc stat: %d fields after the command name, want more than %d", len(fields), stime)
	}
	u, err := strconv.ParseUint(string(fields[utime]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed /proc stat utime %q", fields[utime])
	}
	s, err := strconv.ParseUint(string(fields[stime]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed /proc stat stime %q", fields[stime])
	}
	return u + s, nil
}

// cpuBusy returns the time CPU cpu has spent busy (anything but idle and
// I/O wait), all processes and interrupts together, from /proc/stat.
func cpuBusy(cpu int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("CPU %d busy time: %w", cpu, err)
	}
	ticks, err := parseCPUBusy(b, cpu)
	if err != nil {
		return 0, fmt.Errorf("CPU %d busy time: %w", cpu, err)
	}
	return time.Duration(ticks) * (time.Second / userHZ), nil
}

// parseCPUBusy reads the "cpuN user nice system idle iowait irq softirq
// steal ..." line of /proc/stat and returns its busy ticks.
func parseCPUBusy(stat []byte, cpu int) (uint64, error) {
	prefix := []byte("cpu" + strconv.Itoa(cpu) + " ")
	for line := range bytes.Lines(stat) {
		rest, ok := bytes.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 8 {
			return 0, fmt.Errorf("malformed /proc/stat line %q", bytes.TrimSpace(line))
		}
		var busy uint64
		for i, v := range f[:8] {
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("malformed /proc/stat line %q", bytes.TrimSpace(line))
			}
			if i != 3 && i != 4 { // idle, iowait
				busy += n
			}
		}
		return busy, nil
	}
	return 0, fmt.Errorf("no cpu%d line in /proc/stat", cpu)
}

// selfCPU returns the CPU time (user + system) this process has used, with
// microsecond resolution.
func selfCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// threadCPU returns the CPU time the calling OS thread has used; the
// caller must hold runtime.LockOSThread.
func threadCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0, fmt.Errorf("getrusage(thread): %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// memStatus is a process's resident memory, from /proc/<pid>/status.
type memStatus struct {
	RSS  uint64 // VmRSS, bytes
	Peak uint64 // VmHWM (peak RSS), bytes
}

func processMem(pid int) (memStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memStatus{}, fmt.Errorf("memory of pid %d: %w", pid, err)
	}
	m, err := parseStatusMem(b)
	if err != nil {
		return memStatus{}, fmt.Errorf("memory of pid %d: %w", pid, err)
	}
	return m, nil
}

// parseStatusMem reads VmRSS and VmHWM ("VmRSS:	   12345 kB") from the text
// of /proc/<pid>/status.
func parseStatusMem(status []byte) (memStatus, error) {
	var m memStatus
	var haveRSS bool
	for line := range bytes.Lines(status) {
		key, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		switch string(key) {
		case "VmRSS":
			dst, haveRSS = &m.RSS, true
		case "VmHWM":
			dst = &m.Peak
		default:
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return memStatus{}, fmt.Errorf("malformed /proc status line %q", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return memStatus{}, fmt.Errorf("malformed /proc status line %q", bytes.TrimSpace(line))
		}
		*dst = kb * 1024
	}
	if !haveRSS {
		return memStatus{}, errors.New("no VmRSS in /proc status (a kernel thread or a zombie?)")
	}
	return m, nil
}

// pinProcess restricts every thread of process pid to CPU cpu. Threads
// created later inherit the mask from the thread that creates them, which
// is pinned by then; the thread list is walked until it stops changing so
// that threads being created during the walk are caught too.
func pinProcess(pid, cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	done := make(map[int]bool)
	for range 10 {
		entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return fmt.Errorf("pin pid %d to CPU %d: %w", pid, cpu, err)
		}
		fresh := 0
		for _, e := range entries {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("pin thread %d of pid %d to CPU %d: %w", tid, pid, cpu, err)
			}
			done[tid] = true
			fresh++
		}
		if fresh == 0 {
			return nil
		}
	}
	return fmt.Errorf("pin pid %d to CPU %d: its threads kept changing", pid, cpu)
}

// cpuAllowed reports whether this process may run on CPU cpu (it is in
// the affinity mask it started with).
func cpuAllowed(cpu int) bool {
	var set unix.CPUSet
	if cpu < 0 || unix.SchedGetaffinity(0, &set) != nil {
		return false
	}
	return set.IsSet(cpu)
}

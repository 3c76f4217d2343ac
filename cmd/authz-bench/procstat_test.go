package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// Fields 3..: state ppid pgrp session tty tpgid flags minflt cminflt
	// majflt cmajflt utime stime cutime cstime ...
	const tail = " S 1 2 3 0 -1 4194560 500 0 0 0 %d %d 9 9 20 0 8 0 100 1000000 500"
	tests := []struct {
		name    string
		stat    string
		want    uint64
		wantErr string
	}{
		{name: "plain", stat: "1234 (agentos-authz)" + fmt.Sprintf(tail, 150, 25), want: 175},
		{name: "command with spaces and parens", stat: "42 (a (b) c) d)" + fmt.Sprintf(tail, 7, 3), want: 10},
		{name: "large values", stat: "1 (x)" + fmt.Sprintf(tail, 1<<40, 1), want: 1<<40 + 1},
		{name: "no command", stat: "1234 agentos-authz S 1", wantErr: "no command name"},
		{name: "too few fields", stat: "1234 (x) S 1 2 3", wantErr: "fields after the command name"},
		{name: "not a number", stat: "1234 (x) S 1 2 3 0 -1 4194560 500 0 0 0 abc 1 9", wantErr: `utime "abc"`},
		{name: "negative stime", stat: "1234 (x) S 1 2 3 0 -1 4194560 500 0 0 0 1 -1 9", wantErr: `stime "-1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("parseStatCPU(%q) error = %v, want it to contain %q", tc.stat, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parseStatCPU(%q) = %d, %v; want %d", tc.stat, got, err, tc.want)
			}
		})
	}
}

func TestParseCPUBusy(t *testing.T) {
	const stat = "cpu  900 0 100 5000 10 0 5 0 0 0\n" +
		"cpu0 400 1 50 2500 5 2 3 4 0 0\n" +
		"cpu1 500 0 50 2500 5 0 2 0 0 0\n" +
		"cpu10 7 0 0 0 0 0 0 0 0 0\n" +
		"intr 12345\n"
	tests := []struct {
		name    string
		stat    string
		cpu     int
		want    uint64
		wantErr string
	}{
		{name: "cpu0", stat: stat, cpu: 0, want: 400 + 1 + 50 + 2 + 3 + 4},
		{name: "cpu1", stat: stat, cpu: 1, want: 552},
		{name: "cpu10 is not cpu1", stat: stat, cpu: 10, want: 7},
		{name: "absent", stat: stat, cpu: 2, wantErr: "no cpu2 line"},
		{name: "short line", stat: "cpu0 1 2 3\n", cpu: 0, wantErr: "malformed /proc/stat line"},
		{name: "not a number", stat: "cpu0 1 2 3 x 5 6 7 8\n", cpu: 0, wantErr: "malformed /proc/stat line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCPUBusy([]byte(tc.stat), tc.cpu)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("parseCPUBusy(cpu%d) error = %v, want it to contain %q", tc.cpu, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parseCPUBusy(cpu%d) = %d, %v; want %d", tc.cpu, got, err, tc.want)
			}
		})
	}
	if _, err := cpuBusy(0); err != nil {
		t.Errorf("cpuBusy(0) on this machine: %v", err)
	}
}

func TestParseStatusMem(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    memStatus
		wantErr string
	}{
		{
			name:   "both",
			status: "Name:\tagentos-authz\nVmPeak:\t  900 kB\nVmHWM:\t   30000 kB\nVmRSS:\t   20480 kB\nThreads:\t7\n",
			want:   memStatus{RSS: 20480 << 10, Peak: 30000 << 10},
		},
		{name: "no HWM", status: "VmRSS:\t1 kB\n", want: memStatus{RSS: 1024}},
		{name: "kernel thread", status: "Name:\tkthreadd\nThreads:\t1\n", wantErr: "no VmRSS"},
		{name: "bad unit", status: "VmRSS:\t1 MB\n", wantErr: "malformed /proc status line"},
		{name: "bad number", status: "VmRSS:\tx kB\n", wantErr: "malformed /proc status line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatusMem([]byte(tc.status))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("parseStatusMem(%q) error = %v, want it to contain %q", tc.status, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parseStatusMem(%q) = %+v, %v; want %+v", tc.status, got, err, tc.want)
			}
		})
	}
}

func TestProcessFigures(t *testing.T) {
	pid := os.Getpid()
	before, err := processCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	selfBefore, err := selfCPU()
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the kernel's 10 ms accounting ticks over, bounded.
	deadline := time.Now().Add(5 * time.Second)
	after := before
	for after == before && time.Now().Before(deadline) {
		x := 0
		for i := range 1_000_000 {
			x += i
		}
		_ = x
		if after, err = processCPU(pid); err != nil {
			t.Fatal(err)
		}
	}
	if after <= before {
		t.Errorf("processCPU did not grow while burning CPU: %v then %v", before, after)
	}
	if selfAfter, err := selfCPU(); err != nil || selfAfter <= selfBefore {
		t.Errorf("selfCPU = %v (%v), want more than %v", selfAfter, err, selfBefore)
	}
	runtime.LockOSThread()
	threadBefore, err := threadCPU()
	if err != nil {
		t.Fatal(err)
	}
	for threadAfter := threadBefore; threadAfter == threadBefore; {
		if threadAfter, err = threadCPU(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatal("threadCPU did not grow while this thread spun")
		}
	}
	runtime.UnlockOSThread()
	m, err := processMem(pid)
	if err != nil || m.RSS == 0 || m.Peak < m.RSS {
		t.Errorf("processMem(self) = %+v, %v; want RSS > 0 and peak >= RSS", m, err)
	}
	if _, err := processCPU(-1); err == nil {
		t.Error("processCPU(-1) = nil error, want one")
	}
}

func TestPinProcess(t *testing.T) {
	cpu := -1
	for c := range 64 {
		if cpuAllowed(c) {
			cpu = c
			break
		}
	}
	if cpu < 0 {
		t.Fatal("no CPU below 64 in this process's affinity mask: pinProcess cannot be tested here")
	}
	sleeper := exec.CommandContext(t.Context(), "sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatalf("cannot start sleep(1), the process this test pins: %v", err)
	}
	t.Cleanup(func() {
		_ = sleeper.Process.Kill()
		_ = sleeper.Wait()
	})
	if err := pinProcess(sleeper.Process.Pid, cpu); err != nil {
		t.Fatalf("pinProcess(sleep, %d): %v", cpu, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", sleeper.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("Cpus_allowed_list:\t%d\n", cpu)
	if !bytes.Contains(status, []byte(want)) {
		t.Errorf("after pinProcess(sleep, %d), /proc status lacks %q", cpu, want)
	}
	if err := pinProcess(-1, cpu); err == nil {
		t.Error("pinProcess(-1) = nil error, want one")
	}
	if cpuAllowed(-1) || cpuAllowed(1<<20) {
		t.Error("cpuAllowed accepts a CPU that cannot exist")
	}
}

package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Readiness (/readyz) is a list of named conditions; the service is ready
// when every one holds. Components register their own condition when serve
// wires them (the configuration, the keys, the drain, shadow mode; a
// component with state of its own, such as a database connection, registers
// one more), and /readyz reports each with a short detail, so an operator
// sees why a pod is not ready rather than "not ready".

// condition is one readiness condition as /readyz reports it.
type condition struct {
	// Name is a stable snake_case name.
	Name string `json:"name"`
	// OK reports whether the condition holds; any false one makes /readyz
	// answer 503.
	OK bool `json:"ok"`
	// Detail says what the condition is waiting for, or a warning that
	// does not stop readiness (shadow mode); never a secret.
	Detail string `json:"detail,omitempty"`
}

// conditionFunc evaluates a condition now; it must be cheap and safe for
// concurrent use (/readyz calls it on every probe).
type conditionFunc func() (ok bool, detail string)

// readyConditions is the registry of conditions, in registration order. Safe for
// concurrent use.
type readyConditions struct {
	mu     sync.RWMutex
	names  []string
	checks []conditionFunc
}

// register adds the condition name, evaluated by check on every probe.
func (r *readyConditions) register(name string, check conditionFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names = append(r.names, name)
	r.checks = append(r.checks, check)
}

// remove drops the condition name (a component turned off by a reload).
func (r *readyConditions) remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := slices.Index(r.names, name); i >= 0 {
		r.names = slices.Delete(r.names, i, i+1)
		r.checks = slices.Delete(r.checks, i, i+1)
	}
}

// evaluate returns every condition and whether all hold (false with none
// registered: nothing is known to be ready).
func (r *readyConditions) evaluate() (bool, []condition) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ready := len(r.checks) > 0
	out := make([]condition, len(r.checks))
	for i, check := range r.checks {
		ok, detail := check()
		out[i] = condition{Name: r.names[i], OK: ok, Detail: detail}
		ready = ready && ok
	}
	return ready, out
}

// readyzBody is the JSON document of /readyz.
type readyzBody struct {
	Ready      bool        `json:"ready"`
	Conditions []condition `json:"conditions"`
}

// serveReadyz answers 200 when every condition holds, else 503, with the
// conditions as JSON either way.
func (r *readyConditions) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	ready, conds := r.evaluate()
	body, err := json.Marshal(readyzBody{Ready: ready, Conditions: conds})
	if err != nil {
		// Strings and booleans always marshal; stay not ready regardless.
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write(append(body, '\n'))
}

// flagCondition is a condition that holds once set, with the detail to
// report until then.
func flagCondition(flag interface{ Load() bool }, waiting string) conditionFunc {
	return func() (bool, string) {
		if flag.Load() {
			return true, ""
		}
		return false, waiting
	}
}

// Readiness condition names.
const (
	condConfig   = "config_loaded"
	condKeys     = "keys_loaded"
	condDraining = "not_draining"
	condShadow   = "shadow_mode"
)

// waitShutdownDelay keeps the listeners answering for delay after SIGTERM,
// health already NOT_SERVING (docs/CONTRACT.md §4 shutdown_delay): Kubernetes
// removes a terminating pod from its Service's endpoints asynchronously, and
// proxies keep sending checks to it until they learn, so a pod that stopped
// listening at once would fail them.
func waitShutdownDelay(log *zap.Logger, delay time.Duration) {
	log.Info("shutdown delay: NOT_SERVING, still answering checks", zap.Duration("delay", delay))
	t := time.NewTimer(delay)
	defer t.Stop()
	<-t.C
}

// shadowWarning is logged at start and reported on /readyz in shadow mode.
const shadowWarning = "SHADOW MODE: every authentication and authorization denial is let through " +
	"(x-agentos-shadow-decision says what enforce mode would answer); malformed requests (400) are still refused. " +
	"Set mode: enforce once the decisions are right"

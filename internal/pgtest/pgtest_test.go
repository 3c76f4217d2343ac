package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestStartStopRestart runs a cluster, checks it answers as the superuser, stops it
// (connections refused) and starts it again on the same port with the same data.
func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	s.Exec(t, `CREATE TABLE kept (v int)`, `INSERT INTO kept VALUES (42)`)
	query := func() (int, error) {
		conn, err := pgx.Connect(t.Context(), s.SuperURL())
		if err != nil {
			return 0, err
		}
		defer conn.Close(context.Background())
		var v int
		err = conn.QueryRow(t.Context(), `SELECT v FROM kept`).Scan(&v)
		return v, err
	}
	if v, err := query(); err != nil || v != 42 {
		t.Fatalf("query = %d, %v; want 42", v, err)
	}
	s.Stop(t)
	if _, err := query(); err == nil {
		t.Fatal("query on a stopped server succeeded")
	}
	s.Restart(t)
	if v, err := query(); err != nil || v != 42 {
		t.Fatalf("query after restart = %d, %v; want 42", v, err)
	}
}

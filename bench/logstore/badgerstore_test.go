package main

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestBadgerStore(t *testing.T) {
	dir := t.TempDir()
	s, err := openBadgerStore(dir)
	if err != nil {
		t.Fatal(err)
	}

	if i, err := s.FirstIndex(); err != nil || i != 0 {
		t.Fatalf("empty FirstIndex = %d, %v", i, err)
	}
	if i, err := s.LastIndex(); err != nil || i != 0 {
		t.Fatalf("empty LastIndex = %d, %v", i, err)
	}
	if _, err := s.GetUint64([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("missing key: %v, want \"not found\"", err)
	}

	at := time.Unix(1700000000, 123)
	var logs []*raft.Log
	for i := uint64(5); i <= 300; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 2, Type: raft.LogCommand, Data: []byte{byte(i)}, Extensions: []byte("x"), AppendedAt: at})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if i, _ := s.FirstIndex(); i != 5 {
		t.Fatalf("FirstIndex = %d", i)
	}
	if i, _ := s.LastIndex(); i != 300 {
		t.Fatalf("LastIndex = %d", i)
	}
	var l raft.Log
	if err := s.GetLog(256, &l); err != nil {
		t.Fatal(err)
	}
	if l.Index != 256 || l.Term != 2 || !bytes.Equal(l.Data, []byte{0}) || string(l.Extensions) != "x" || !l.AppendedAt.Equal(at) {
		t.Fatalf("GetLog = %+v", l)
	}
	if err := s.GetLog(4, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(4) = %v", err)
	}

	if err := s.DeleteRange(5, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(251, 300); err != nil {
		t.Fatal(err)
	}
	if i, _ := s.FirstIndex(); i != 101 {
		t.Fatalf("FirstIndex after delete = %d", i)
	}
	if i, _ := s.LastIndex(); i != 250 {
		t.Fatalf("LastIndex after delete = %d", i)
	}

	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("n1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Everything survives a reopen.
	s, err = openBadgerStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Fatalf("GetUint64 = %d, %v", v, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "n1" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if i, _ := s.LastIndex(); i != 250 {
		t.Fatalf("LastIndex after reopen = %d", i)
	}
}

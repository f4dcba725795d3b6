// Package hetznerfake serves a local stand-in for the Hetzner Cloud API
// (api.hetzner.cloud/v1), including its DNS zones and record sets, for tests: no
// machine here can reach the real one. It speaks the same JSON (the hcloud-go schema
// types) for the calls edgeline makes: SSH keys, firewalls, servers, actions, zones and
// RRSets, and enforces the rules of the real API that edgeline must live with (an SSH
// key's name and fingerprint are unique in a project; a firewall in use cannot go).
// Servers get the addresses the test hands out, e.g. a real sshd test host's.
package hetznerfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// Server is a running fake API.
type Server struct {
	// URL is the API endpoint to give hcloud.WithEndpoint.
	URL string

	mu        sync.Mutex
	srv       *httptest.Server
	nextID    int64
	ipv4      string
	ipv6      string
	keys      map[int64]schema.SSHKey
	firewalls map[int64]schema.Firewall
	servers   map[int64]schema.Server
	userData  map[string]string
	zones     map[int64]schema.Zone
	rrsets    map[string]schema.ZoneRRSet // zoneID/name/type
	calls     []string
}

// Start starts a fake API on loopback that gives every new server ipv4 and ipv6 as its
// public addresses, and knows the DNS zones named. Close it when done.
func Start(ipv4, ipv6 string, zones ...string) *Server {
	s := &Server{
		nextID: 100, ipv4: ipv4, ipv6: ipv6,
		keys: map[int64]schema.SSHKey{}, firewalls: map[int64]schema.Firewall{},
		servers: map[int64]schema.Server{}, userData: map[string]string{},
		zones: map[int64]schema.Zone{}, rrsets: map[string]schema.ZoneRRSet{},
	}
	for _, z := range zones {
		id := s.id()
		s.zones[id] = schema.Zone{ID: id, Name: z, TTL: 3600, Mode: "primary", Status: "ok", Labels: map[string]string{}}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ssh_keys", s.listKeys)
	mux.HandleFunc("POST /v1/ssh_keys", s.createKey)
	mux.HandleFunc("DELETE /v1/ssh_keys/{id}", s.deleteKey)
	mux.HandleFunc("GET /v1/firewalls", s.listFirewalls)
	mux.HandleFunc("POST /v1/firewalls", s.createFirewall)
	mux.HandleFunc("POST /v1/firewalls/{id}/actions/set_rules", s.setRules)
	mux.HandleFunc("DELETE /v1/firewalls/{id}", s.deleteFirewall)
	mux.HandleFunc("GET /v1/servers", s.listServers)
	mux.HandleFunc("GET /v1/servers/{id}", s.getServer)
	mux.HandleFunc("POST /v1/servers", s.createServer)
	mux.HandleFunc("DELETE /v1/servers/{id}", s.deleteServer)
	mux.HandleFunc("GET /v1/actions", s.listActions)
	mux.HandleFunc("GET /v1/zones", s.listZones)
	mux.HandleFunc("GET /v1/zones/{zone}", s.getZone)
	mux.HandleFunc("GET /v1/zones/{zone}/rrsets/{name}/{type}", s.getRRSet)
	mux.HandleFunc("POST /v1/zones/{zone}/rrsets", s.createRRSet)
	mux.HandleFunc("POST /v1/zones/{zone}/rrsets/{name}/{type}/actions/set_records", s.setRecords)
	mux.HandleFunc("DELETE /v1/zones/{zone}/rrsets/{name}/{type}", s.deleteRRSet)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+Token {
			writeError(w, http.StatusUnauthorized, "unauthorized", "unable to authenticate")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Method != http.MethodGet {
			s.calls = append(s.calls, r.Method+" "+strings.TrimPrefix(r.URL.Path, "/v1"))
		}
		mux.ServeHTTP(w, r)
	}))
	s.URL = s.srv.URL + "/v1"
	return s
}

// Token is the API token the fake accepts.
const Token = "edgeline-test-token"

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Calls returns the changing requests so far ("POST /servers"), in order.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Counts reports how many SSH keys, firewalls, servers and RRSets exist.
func (s *Server) Counts() (keys, firewalls, servers, rrsets int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys), len(s.firewalls), len(s.servers), len(s.rrsets)
}

// UserData returns the cloud-init user data server name was created with.
func (s *Server) UserData(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userData[name]
}

// Records returns the values of the RRSet name/typ in zone ("" if none).
func (s *Server) Records(zone, name, typ string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, z := range s.zones {
		if z.Name != zone {
			continue
		}
		var out []string
		for _, r := range s.rrsets[fmt.Sprintf("%d/%s/%s", z.ID, name, typ)].Records {
			out = append(out, r.Value)
		}
		return out
	}
	return nil
}

// AddRecord adds an RRSet with one value to zone, as one made by hand or by an older
// version would be.
func (s *Server) AddRecord(zone, name, typ, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, z := range s.zones {
		if z.Name != zone {
			continue
		}
		k := rrKey(z, name, typ)
		if _, ok := s.rrsets[k]; ok {
			return fmt.Errorf("rrset %s %s already exists", name, typ)
		}
		s.rrsets[k] = schema.ZoneRRSet{ID: name + "/" + typ, Name: name, Type: typ, TTL: ptr(300), Labels: map[string]string{},
			Records: []schema.ZoneRRSetRecord{{Value: value}}, Zone: z.ID}
		return nil
	}
	return fmt.Errorf("zone %s not found", zone)
}

func (s *Server) id() int64 { s.nextID++; return s.nextID }

func (s *Server) action(command string) schema.Action {
	now := time.Now()
	return schema.Action{ID: s.id(), Status: "success", Command: command, Progress: 100, Started: now, Finished: &now}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// writeList writes a one-page list response: the items under key, and the meta block.
func writeList(w http.ResponseWriter, key string, items any, n int) {
	writeJSON(w, http.StatusOK, map[string]any{
		key:    items,
		"meta": schema.Meta{Pagination: &schema.MetaPagination{Page: 1, PerPage: 50, LastPage: 1, TotalEntries: n}},
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_input", err.Error())
		return false
	}
	return true
}

func pathID(r *http.Request) int64 {
	n, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return n
}

func sortedByID[T any](m map[int64]T, keep func(T) bool) []T {
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := []T{}
	for _, id := range ids {
		if keep(m[id]) {
			out = append(out, m[id])
		}
	}
	return out
}

func nameFilter(r *http.Request) func(string) bool {
	name := r.URL.Query().Get("name")
	return func(n string) bool { return name == "" || n == name }
}

// listActions answers the action waiter: every action the fake starts has finished.
func (s *Server) listActions(w http.ResponseWriter, r *http.Request) {
	var out []schema.Action
	now := time.Now()
	for _, v := range r.URL.Query()["id"] {
		id, _ := strconv.ParseInt(v, 10, 64)
		out = append(out, schema.Action{ID: id, Status: "success", Progress: 100, Started: now, Finished: &now})
	}
	writeList(w, "actions", out, len(out))
}

func idOrName(v schema.IDOrName) string {
	if v.Name != "" {
		return v.Name
	}
	return strconv.FormatInt(v.ID, 10)
}

func deref(m *map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return *m
}

func ptr[T any](v T) *T { return &v }

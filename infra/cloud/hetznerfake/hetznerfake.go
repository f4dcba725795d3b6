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
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
	"golang.org/x/crypto/ssh"
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

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	match := nameFilter(r)
	fp := r.URL.Query().Get("fingerprint")
	keys := sortedByID(s.keys, func(k schema.SSHKey) bool { return match(k.Name) && (fp == "" || k.Fingerprint == fp) })
	writeList(w, "ssh_keys", keys, len(keys))
}

// AddKey adds an SSH key as someone other than edgeline would (the console, another
// tool), with the given labels, and returns its ID. It enforces the same rules as the
// API.
func (s *Server) AddKey(name, publicKey string, labels map[string]string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, status, err := s.newKey(name, publicKey, labels)
	if err != nil {
		return 0, fmt.Errorf("%d %s", status, err)
	}
	return k.ID, nil
}

// Keys returns the names of the SSH keys in the project, sorted by ID.
func (s *Server) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, k := range sortedByID(s.keys, func(schema.SSHKey) bool { return true }) {
		out = append(out, k.Name)
	}
	return out
}

// newKey adds a key the way the real API does: the public key must parse, and neither its
// name nor its fingerprint (MD5, as the API reports it) may be in the project already.
func (s *Server) newKey(name, publicKey string, labels map[string]string) (schema.SSHKey, int, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(publicKey))
	if err != nil {
		return schema.SSHKey{}, http.StatusBadRequest, fmt.Errorf("invalid_input: invalid public key")
	}
	fp := ssh.FingerprintLegacyMD5(pub)
	for _, k := range s.keys {
		if k.Name == name {
			return schema.SSHKey{}, http.StatusConflict, fmt.Errorf("uniqueness_error: SSH key with the same name already exists")
		}
		if k.Fingerprint == fp {
			return schema.SSHKey{}, http.StatusConflict, fmt.Errorf("uniqueness_error: SSH key with the same fingerprint already exists")
		}
	}
	if labels == nil {
		labels = map[string]string{}
	}
	k := schema.SSHKey{ID: s.id(), Name: name, Fingerprint: fp, PublicKey: publicKey, Created: time.Now(), Labels: labels}
	s.keys[k.ID] = k
	return k, 0, nil
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var req schema.SSHKeyCreateRequest
	if !decode(w, r, &req) {
		return
	}
	k, status, err := s.newKey(req.Name, req.PublicKey, deref(req.Labels))
	if err != nil {
		code, msg, _ := strings.Cut(err.Error(), ": ")
		writeError(w, status, code, msg)
		return
	}
	writeJSON(w, http.StatusCreated, schema.SSHKeyCreateResponse{SSHKey: k})
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.keys[pathID(r)]; !ok {
		writeError(w, http.StatusNotFound, "not_found", "SSH key not found")
		return
	}
	delete(s.keys, pathID(r))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listFirewalls(w http.ResponseWriter, r *http.Request) {
	match := nameFilter(r)
	fws := sortedByID(s.firewalls, func(f schema.Firewall) bool { return match(f.Name) })
	writeList(w, "firewalls", fws, len(fws))
}

// checkRules refuses what the real API refuses in firewall rules: an incoming rule
// without source networks, or a source that is not a network in CIDR notation.
func checkRules(in []schema.FirewallRuleRequest) error {
	for _, r := range in {
		if r.Direction == "in" && len(r.SourceIPs) == 0 {
			return fmt.Errorf("invalid_input: an incoming rule has no source_ips")
		}
		for _, ip := range r.SourceIPs {
			if p, err := netip.ParsePrefix(ip); err != nil || p.Masked() != p {
				return fmt.Errorf("invalid_input: source_ips: %q is not a valid network in CIDR notation", ip)
			}
		}
	}
	return nil
}

// FirewallSources returns the source networks of the firewall named name's incoming
// rule for port ("22", "6443"), nil when there is none.
func (s *Server) FirewallSources(name, port string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.firewalls {
		if f.Name != name {
			continue
		}
		for _, r := range f.Rules {
			if r.Direction == "in" && r.Port != nil && *r.Port == port {
				return slices.Sorted(slices.Values(r.SourceIPs))
			}
		}
	}
	return nil
}

func rules(in []schema.FirewallRuleRequest) []schema.FirewallRule {
	out := []schema.FirewallRule{}
	for _, r := range in {
		out = append(out, schema.FirewallRule{Direction: r.Direction, SourceIPs: r.SourceIPs, DestinationIPs: r.DestinationIPs, Protocol: r.Protocol, Port: r.Port, Description: r.Description})
	}
	return out
}

func (s *Server) createFirewall(w http.ResponseWriter, r *http.Request) {
	var req schema.FirewallCreateRequest
	if !decode(w, r, &req) {
		return
	}
	if err := checkRules(req.Rules); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_input", err.Error())
		return
	}
	f := schema.Firewall{ID: s.id(), Name: req.Name, Labels: deref(req.Labels), Created: time.Now(), Rules: rules(req.Rules), AppliedTo: []schema.FirewallResource{}}
	s.firewalls[f.ID] = f
	writeJSON(w, http.StatusCreated, schema.FirewallCreateResponse{Firewall: f, Actions: []schema.Action{}})
}

func (s *Server) setRules(w http.ResponseWriter, r *http.Request) {
	f, ok := s.firewalls[pathID(r)]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "firewall not found")
		return
	}
	var req schema.FirewallActionSetRulesRequest
	if !decode(w, r, &req) {
		return
	}
	if err := checkRules(req.Rules); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_input", err.Error())
		return
	}
	f.Rules = rules(req.Rules)
	s.firewalls[f.ID] = f
	writeJSON(w, http.StatusCreated, schema.FirewallActionSetRulesResponse{Actions: []schema.Action{s.action("set_firewall_rules")}})
}

func (s *Server) deleteFirewall(w http.ResponseWriter, r *http.Request) {
	id := pathID(r)
	if _, ok := s.firewalls[id]; !ok {
		writeError(w, http.StatusNotFound, "not_found", "firewall not found")
		return
	}
	for _, srv := range s.servers {
		if slices.ContainsFunc(srv.PublicNet.Firewalls, func(f schema.ServerFirewall) bool { return f.ID == id }) {
			writeError(w, http.StatusConflict, "resource_in_use", "firewall is still applied to a server")
			return
		}
	}
	delete(s.firewalls, id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listServers(w http.ResponseWriter, r *http.Request) {
	match := nameFilter(r)
	srvs := sortedByID(s.servers, func(x schema.Server) bool { return match(x.Name) })
	writeList(w, "servers", srvs, len(srvs))
}

func (s *Server) getServer(w http.ResponseWriter, r *http.Request) {
	srv, ok := s.servers[pathID(r)]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "server not found")
		return
	}
	writeJSON(w, http.StatusOK, schema.ServerGetResponse{Server: srv})
}

func (s *Server) createServer(w http.ResponseWriter, r *http.Request) {
	var req schema.ServerCreateRequest
	if !decode(w, r, &req) {
		return
	}
	for _, x := range s.servers {
		if x.Name == req.Name {
			writeError(w, http.StatusConflict, "uniqueness_error", "server name is already used")
			return
		}
	}
	for _, k := range req.SSHKeys {
		if _, ok := s.keys[k]; !ok {
			writeError(w, http.StatusNotFound, "not_found", "SSH key not found")
			return
		}
	}
	srv := schema.Server{
		ID: s.id(), Name: req.Name, Status: "running", Created: time.Now(),
		ServerType: schema.ServerType{Name: idOrName(req.ServerType)},
		Location:   schema.Location{Name: req.Location},
		Image:      &schema.Image{Name: ptr(idOrName(req.Image))},
		Labels:     deref(req.Labels),
		PublicNet: schema.ServerPublicNet{
			IPv4: schema.ServerPublicNetIPv4{ID: s.id(), IP: s.ipv4},
			IPv6: schema.ServerPublicNetIPv6{ID: s.id(), IP: s.ipv6 + "/64"},
		},
		PrivateNet: []schema.ServerPrivateNet{}, Volumes: []int64{}, LoadBalancers: []int64{},
	}
	for _, f := range req.Firewalls {
		if _, ok := s.firewalls[f.Firewall]; !ok {
			writeError(w, http.StatusNotFound, "not_found", "firewall not found")
			return
		}
		srv.PublicNet.Firewalls = append(srv.PublicNet.Firewalls, schema.ServerFirewall{ID: f.Firewall, Status: "applied"})
	}
	s.servers[srv.ID] = srv
	s.userData[srv.Name] = req.UserData
	writeJSON(w, http.StatusCreated, schema.ServerCreateResponse{Server: srv, Action: s.action("create_server"), NextActions: []schema.Action{s.action("start_server")}})
}

func (s *Server) deleteServer(w http.ResponseWriter, r *http.Request) {
	srv, ok := s.servers[pathID(r)]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "server not found")
		return
	}
	delete(s.servers, srv.ID)
	delete(s.userData, srv.Name)
	writeJSON(w, http.StatusOK, schema.ServerDeleteResponse{Action: s.action("delete_server")})
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

func (s *Server) listZones(w http.ResponseWriter, r *http.Request) {
	match := nameFilter(r)
	zs := sortedByID(s.zones, func(z schema.Zone) bool { return match(z.Name) })
	writeList(w, "zones", zs, len(zs))
}

func (s *Server) getZone(w http.ResponseWriter, r *http.Request) {
	if z, ok := s.zone(w, r); ok {
		writeJSON(w, http.StatusOK, schema.ZoneGetResponse{Zone: z})
	}
}

func (s *Server) zone(w http.ResponseWriter, r *http.Request) (schema.Zone, bool) {
	v := r.PathValue("zone")
	for _, z := range s.zones {
		if z.Name == v || strconv.FormatInt(z.ID, 10) == v {
			return z, true
		}
	}
	writeError(w, http.StatusNotFound, "not_found", "zone not found")
	return schema.Zone{}, false
}

func rrKey(z schema.Zone, name, typ string) string { return fmt.Sprintf("%d/%s/%s", z.ID, name, typ) }

func (s *Server) getRRSet(w http.ResponseWriter, r *http.Request) {
	z, ok := s.zone(w, r)
	if !ok {
		return
	}
	rr, ok := s.rrsets[rrKey(z, r.PathValue("name"), r.PathValue("type"))]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "rrset not found")
		return
	}
	writeJSON(w, http.StatusOK, schema.ZoneRRSetGetResponse{RRSet: rr})
}

func (s *Server) createRRSet(w http.ResponseWriter, r *http.Request) {
	z, ok := s.zone(w, r)
	if !ok {
		return
	}
	var req schema.ZoneRRSetCreateRequest
	if !decode(w, r, &req) {
		return
	}
	k := rrKey(z, req.Name, req.Type)
	if _, ok := s.rrsets[k]; ok {
		writeError(w, http.StatusConflict, "uniqueness_error", "rrset already exists")
		return
	}
	rr := schema.ZoneRRSet{ID: req.Name + "/" + req.Type, Name: req.Name, Type: req.Type, TTL: req.TTL, Labels: deref(req.Labels), Records: req.Records, Zone: z.ID}
	s.rrsets[k] = rr
	writeJSON(w, http.StatusCreated, schema.ZoneRRSetCreateResponse{RRSet: rr, Action: s.action("create_rrset")})
}

func (s *Server) setRecords(w http.ResponseWriter, r *http.Request) {
	z, ok := s.zone(w, r)
	if !ok {
		return
	}
	k := rrKey(z, r.PathValue("name"), r.PathValue("type"))
	rr, ok := s.rrsets[k]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "rrset not found")
		return
	}
	var req schema.ZoneRRSetSetRecordsRequest
	if !decode(w, r, &req) {
		return
	}
	rr.Records = req.Records
	s.rrsets[k] = rr
	writeJSON(w, http.StatusCreated, schema.ActionGetResponse{Action: s.action("set_records")})
}

func (s *Server) deleteRRSet(w http.ResponseWriter, r *http.Request) {
	z, ok := s.zone(w, r)
	if !ok {
		return
	}
	k := rrKey(z, r.PathValue("name"), r.PathValue("type"))
	if _, ok := s.rrsets[k]; !ok {
		writeError(w, http.StatusNotFound, "not_found", "rrset not found")
		return
	}
	delete(s.rrsets, k)
	writeJSON(w, http.StatusCreated, schema.ActionGetResponse{Action: s.action("delete_rrset")})
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

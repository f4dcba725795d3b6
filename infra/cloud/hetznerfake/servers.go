package hetznerfake

import (
	"net/http"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

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

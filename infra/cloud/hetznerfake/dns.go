package hetznerfake

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

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

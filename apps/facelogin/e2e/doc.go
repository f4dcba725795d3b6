// Package e2e holds the face-login end-to-end tests: the real facelogin binary, real headless
// Chromium with fake cameras made from testdata/faces photos, a real nginx balancing two api
// processes and a real PostgreSQL. It has no code outside its tests.
//
// The tests run when EDGELINE_TEST_CHROMIUM names the browser (make test sets it when
// /usr/bin/chromium exists), EDGELINE_FACES the photos and EDGELINE_MODELS the dlib models;
// the load-balancing test also needs EDGELINE_TEST_NGINX and EDGELINE_TEST_POSTGRES, and
// TestOnTheNode (the chart installed through internal/helm on internal/nodetest's real node)
// EDGELINE_TEST_NODE, which make test sets when it runs as root.
// Screenshots of every page land in artifacts/screenshots/.
package e2e

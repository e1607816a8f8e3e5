package httpapi

import (
	"context"
	"fmt"
	"sync"
	"time"

	api "github.com/gatehouse/gatehouse/gen/api"
)

// checkTimeout bounds each readiness check, so a hung dependency makes the
// probe answer 503 quickly instead of hanging the load balancer.
const checkTimeout = 2 * time.Second

// GetLiveness answers as long as the process serves HTTP.
func (s *Server) GetLiveness(context.Context, api.GetLivenessRequestObject) (api.GetLivenessResponseObject, error) {
	return api.GetLiveness200JSONResponse{Body: api.Liveness{Status: api.LivenessStatusUp}}, nil
}

// GetReadiness checks PostgreSQL and Redis.
func (s *Server) GetReadiness(ctx context.Context, _ api.GetReadinessRequestObject) (api.GetReadinessResponseObject, error) {
	h := s.health(ctx)
	if !h.Healthy {
		return api.GetReadiness503JSONResponse{Body: h}, nil
	}
	return api.GetReadiness200JSONResponse{Body: h}, nil
}

// GetHealth is the same report as readiness, under its historical path.
func (s *Server) GetHealth(ctx context.Context, _ api.GetHealthRequestObject) (api.GetHealthResponseObject, error) {
	h := s.health(ctx)
	if !h.Healthy {
		return api.GetHealth503JSONResponse{Body: h}, nil
	}
	return api.GetHealth200JSONResponse{Body: h}, nil
}

// health runs the checks once for all the probes that arrive while they run,
// so a flood of anonymous probes holds at most one database connection.
func (s *Server) health(ctx context.Context) api.Health {
	v, _, _ := s.healthFlight.Do("health", func() (any, error) {
		return s.runChecks(context.WithoutCancel(ctx)), nil
	})
	return v.(api.Health)
}

func (s *Server) runChecks(ctx context.Context) api.Health {
	var pg, rd api.Check
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pg = s.runCheck(ctx, "postgres", s.deps.PostgresCheck) }()
	go func() { defer wg.Done(); rd = s.runCheck(ctx, "redis", s.deps.RedisCheck) }()
	wg.Wait()
	return api.Health{
		Healthy: pg.Status == api.CheckStatusUp && rd.Status == api.CheckStatusUp,
		Checks:  api.HealthChecks{Postgres: pg, Redis: rd},
	}
}

func (s *Server) runCheck(ctx context.Context, name string, check Check) api.Check {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	start := time.Now()
	err := safeCheck(ctx, check)
	res := api.Check{Status: api.CheckStatusUp, LatencyMs: float32(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		res.Status = api.CheckStatusDown
		msg := "unreachable"
		if ctx.Err() != nil {
			msg = "timed out"
		}
		res.Error = &msg
		s.log.WarnContext(ctx, "readiness check failed", "check", name, "error", err.Error())
	}
	return res
}

// safeCheck runs check in its goroutine's own recover: a panicking client
// library must report "down", not kill the process.
func safeCheck(ctx context.Context, check Check) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check panicked: %v", r)
		}
	}()
	return check(ctx)
}

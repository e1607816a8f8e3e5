package apitest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/redisstore"
)

// The Redis topologies of production, as real redis-server processes of the
// test's own on loopback TCP ports (Cluster and Sentinel announce TCP
// addresses; unix sockets will not do), in a private folder, killed by PID
// when the test ends. Nothing is persisted: a killed node loses its data,
// as a crashed one would.

// redisProc is one redis-server (or sentinel) process.
type redisProc struct {
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	out  *LockedLog
}

// LockedLog collects a process's output, written and read from several
// goroutines.
type LockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (p *redisProc) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// kill ends the process with SIGKILL (a crash) and waits for it.
func (p *redisProc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// tcpPort returns a loopback port free at the time of the call.
func tcpPort(t testing.TB) int {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedisProc starts redis-server with the arguments args returns (a
// config file first, when any) on a free port, and waits until it answers.
// A port found free may be taken by another test before the server binds
// it: the server then exits, and is started again with other ports.
func startRedisProc(t testing.TB, dir string, args func() []string) *redisProc {
	t.Helper()
	quietRedis.Do(func() { redis.SetLogger(silentLogger{}) })
	for attempt := 1; ; attempt++ {
		p := &redisProc{port: tcpPort(t), out: &LockedLog{}, done: make(chan struct{})}
		a := append(args(), "--port", strconv.Itoa(p.port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", "no", "--loglevel", "warning")
		cmd := exec.Command(redisServerPath(t), a...)
		cmd.Stdout, cmd.Stderr = p.out, p.out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		p.cmd = cmd
		go func() { _ = cmd.Wait(); close(p.done) }()
		t.Cleanup(p.kill)
		c := redis.NewClient(&redis.Options{Addr: p.addr(), DialTimeout: time.Second})
		exited := false
		waitFor(t, 10*time.Second, "redis-server on "+p.addr()+" answers: "+p.out.String(), func() bool {
			select {
			case <-p.done:
				exited = true
				return true
			default:
			}
			return c.Ping(context.Background()).Err() == nil
		})
		_ = c.Close()
		if !exited {
			return p
		}
		if attempt == 3 {
			t.Fatalf("redis-server exited: %s", p.out.String())
		}
	}
}

// waitFor polls ok every 20 ms until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisTempDir is a private folder removed when the test ends.
func redisTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ghrc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// RedisCluster is a Redis Cluster of masters without replicas.
type RedisCluster struct {
	t       testing.TB
	nodes   []*redisProc
	ids     []string
	clients []*redis.Client
}

// StartRedisCluster starts a cluster of n masters sharing the 16384 slots
// evenly, and waits until every node reports it healthy.
func StartRedisCluster(t testing.TB, n int) *RedisCluster {
	t.Helper()
	dir := redisTempDir(t)
	rc := &RedisCluster{t: t}
	var bus0 int
	for i := range n {
		var bus int
		rc.nodes = append(rc.nodes, startRedisProc(t, dir, func() []string {
			bus = tcpPort(t)
			conf := filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", i))
			_ = os.Remove(conf) // left by a server that could not bind its ports
			return []string{
				"--cluster-enabled", "yes", "--cluster-config-file", conf,
				"--cluster-port", strconv.Itoa(bus), "--cluster-node-timeout", "5000",
			}
		}))
		if i == 0 {
			bus0 = bus
		}
	}
	ctx := context.Background()
	for _, n := range rc.nodes {
		c := redis.NewClient(&redis.Options{Addr: n.addr(), DialTimeout: time.Second})
		t.Cleanup(func() { _ = c.Close() })
		rc.clients = append(rc.clients, c)
	}
	for i := range rc.nodes {
		c := rc.node(i)
		id, err := c.ClusterMyID(ctx).Result()
		if err != nil {
			t.Fatalf("CLUSTER MYID: %v", err)
		}
		rc.ids = append(rc.ids, id)
		lo, hi := i*16384/n, (i+1)*16384/n-1
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
		}
		if i > 0 {
			// The bus port is not the default (port+10000): MEET names it.
			if err := c.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", rc.nodes[0].port, bus0).Err(); err != nil {
				t.Fatalf("CLUSTER MEET: %v", err)
			}
		}
	}
	waitFor(t, 30*time.Second, "the cluster is ok on every node", func() bool {
		for i := range rc.nodes {
			info, err := rc.node(i).ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", n)) {
				return false
			}
		}
		return true
	})
	return rc
}

// node returns a plain client of node i, closed when the test ends.
func (rc *RedisCluster) node(i int) *redis.Client {
	return rc.clients[i]
}

// URL is the REDIS_URL of the cluster (with REDIS_CLUSTER=true): a seed
// node, and the others as addr parameters.
func (rc *RedisCluster) URL() string {
	u := "redis://" + rc.nodes[0].addr()
	for i, n := range rc.nodes[1:] {
		if i == 0 {
			u += "?"
		} else {
			u += "&"
		}
		u += "addr=" + n.addr()
	}
	return u
}

// Client returns a cluster client, closed when the test ends.
func (rc *RedisCluster) Client() redis.UniversalClient {
	c, err := redisstore.Connect(redisstore.Options{URL: rc.URL(), Cluster: true})
	if err != nil {
		rc.t.Fatal(err)
	}
	rc.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Slot returns the hash slot of key.
func (rc *RedisCluster) Slot(key string) int {
	n, err := rc.node(0).ClusterKeySlot(context.Background(), key).Result()
	if err != nil {
		rc.t.Fatalf("CLUSTER KEYSLOT: %v", err)
	}
	return int(n)
}

// Owner returns the index of the node serving slot.
func (rc *RedisCluster) Owner(slot int) int {
	shards, err := rc.node(0).ClusterShards(context.Background()).Result()
	if err != nil {
		rc.t.Fatalf("CLUSTER SHARDS: %v", err)
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if int64(slot) < r.Start || int64(slot) > r.End {
				continue
			}
			for _, n := range sh.Nodes {
				if n.Role != "master" {
					continue
				}
				for i, id := range rc.ids {
					if n.ID == id {
						return i
					}
				}
			}
		}
	}
	rc.t.Fatalf("no node serves slot %d", slot)
	return -1
}

// MoveSlot reshards slot from the node serving it to node to, keys and
// all, as `redis-cli --cluster reshard` does.
func (rc *RedisCluster) MoveSlot(slot, to int) error {
	finish, err := rc.StartMovingSlot(slot, to)
	if err != nil {
		return err
	}
	return finish()
}

// StartMovingSlot marks slot migrating from the node serving it to node
// to (clients are redirected with ASK for the keys already moved); finish
// moves its keys by MIGRATE in batches, then tells every node its new
// owner.
func (rc *RedisCluster) StartMovingSlot(slot, to int) (finish func() error, err error) {
	ctx := context.Background()
	from := rc.Owner(slot)
	if from == to {
		return func() error { return nil }, nil
	}
	src, dst := rc.node(from), rc.node(to)
	if err := dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", rc.ids[from]).Err(); err != nil {
		return nil, fmt.Errorf("set slot %d importing: %w", slot, err)
	}
	if err := src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", rc.ids[to]).Err(); err != nil {
		return nil, fmt.Errorf("set slot %d migrating: %w", slot, err)
	}
	return func() error {
		for {
			keys, err := src.ClusterGetKeysInSlot(ctx, slot, 50).Result()
			if err != nil {
				return fmt.Errorf("keys of slot %d: %w", slot, err)
			}
			if len(keys) == 0 {
				break
			}
			args := []any{"MIGRATE", "127.0.0.1", rc.nodes[to].port, "", 0, 5000, "REPLACE", "KEYS"}
			for _, k := range keys {
				args = append(args, k)
			}
			if err := src.Do(ctx, args...).Err(); err != nil {
				return fmt.Errorf("migrate slot %d: %w", slot, err)
			}
		}
		// The new owner first, then the old, then the others (redis-cli's order).
		order := []int{to, from}
		for i := range rc.nodes {
			if i != to && i != from {
				order = append(order, i)
			}
		}
		for _, i := range order {
			if err := rc.node(i).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", rc.ids[to]).Err(); err != nil {
				return fmt.Errorf("set slot %d node on %d: %w", slot, i, err)
			}
		}
		return nil
	}, nil
}

// RedisSentinel is a master with one replica, watched by three sentinels
// that fail it over one second after it stops answering.
type RedisSentinel struct {
	t         testing.TB
	Master    string // the name the sentinels know it by
	master    *redisProc
	replica   *redisProc
	sentinels []*redisProc
}

// StartRedisSentinel starts the master, its replica and three sentinels,
// and waits until every sentinel knows the replica and the other two.
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	dir := redisTempDir(t)
	rs := &RedisSentinel{t: t, Master: "gh"}
	rs.master = startRedisProc(t, dir, func() []string { return nil })
	rs.replica = startRedisProc(t, dir, func() []string {
		return []string{"--replicaof", "127.0.0.1", strconv.Itoa(rs.master.port)}
	})
	for i := range 3 {
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", i))
		// A sentinel rewrites its file as it learns the topology; a new one
		// for each attempt.
		text := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
			"sentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 10000\n"+
			"sentinel parallel-syncs %[1]s 1\n", rs.Master, rs.master.port)
		rs.sentinels = append(rs.sentinels, startRedisProc(t, dir, func() []string {
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{conf, "--sentinel"}
		}))
	}
	ctx := context.Background()
	waitFor(t, 30*time.Second, "every sentinel knows the replica and the other sentinels", func() bool {
		for _, s := range rs.sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: s.addr(), DialTimeout: time.Second})
			m, err := c.Master(ctx, rs.Master).Result()
			_ = c.Close()
			if err != nil || m["num-other-sentinels"] != "2" || m["num-slaves"] != "1" {
				return false
			}
		}
		return true
	})
	// The replica must hold the master's data before it may be promoted.
	rc := redis.NewClient(&redis.Options{Addr: rs.replica.addr()})
	defer func() { _ = rc.Close() }()
	waitFor(t, 30*time.Second, "the replica is in sync", func() bool {
		info, err := rc.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	return rs
}

// URL is the REDIS_URL of the deployment (with REDIS_SENTINEL_MASTER): a
// sentinel, and the others as addr parameters.
func (rs *RedisSentinel) URL() string {
	return fmt.Sprintf("redis://%s?addr=%s&addr=%s", rs.sentinels[0].addr(), rs.sentinels[1].addr(), rs.sentinels[2].addr())
}

// Client returns a client that follows the master, closed when the test ends.
func (rs *RedisSentinel) Client() redis.UniversalClient {
	c, err := redisstore.Connect(redisstore.Options{URL: rs.URL(), SentinelMaster: rs.Master})
	if err != nil {
		rs.t.Fatal(err)
	}
	rs.t.Cleanup(func() { _ = c.Close() })
	return c
}

// MasterAddr returns the address of the master the first sentinel names.
func (rs *RedisSentinel) MasterAddr() string {
	c := redis.NewSentinelClient(&redis.Options{Addr: rs.sentinels[0].addr()})
	defer func() { _ = c.Close() }()
	a, err := c.GetMasterAddrByName(context.Background(), rs.Master).Result()
	if err != nil || len(a) != 2 {
		rs.t.Fatalf("SENTINEL GET-MASTER-ADDR-BY-NAME: %v", err)
	}
	return net.JoinHostPort(a[0], a[1])
}

// KillMaster kills the master with SIGKILL; the sentinels promote the
// replica.
func (rs *RedisSentinel) KillMaster() {
	rs.master.kill()
}

// WaitFailover waits until the sentinels name the former replica master
// and it answers as one.
func (rs *RedisSentinel) WaitFailover(d time.Duration) {
	rs.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: rs.replica.addr()})
	defer func() { _ = c.Close() }()
	waitFor(rs.t, d, "the replica is promoted", func() bool {
		info, err := c.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "role:master") && rs.MasterAddr() == rs.replica.addr()
	})
}

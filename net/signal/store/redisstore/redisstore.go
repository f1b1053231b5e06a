// Package redisstore is a room store (net/signal/store) in Redis, shared
// by several rendezvous server instances behind a load balancer, so that a
// host and a guest connected to different instances still meet and a
// singer whose instance restarts resumes on another. It is a package of
// its own so that only a binary that offers it (duet-server) links Redis.
//
// Times are Unix milliseconds in Redis, from the servers' clocks. A Store
// is safe for concurrent use and owns one goroutine (the dispatch of
// published messages), stopped by Close.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/store"
)

// Store is a store.Store in Redis, shared by several server instances,
// so that a host and a guest connected to different instances still meet.
//
// A room is a hash at PREFIX room:CODE with the fields h and g (the
// host's and the guest's tokens, "" for an empty seat), since (when the
// host began waiting, Unix ms), hs, gs (when each seat's socket was last
// seen, Unix ms), ha, ga (when each seat's socket dropped, Unix ms; absent
// while it is held) and o (the address that created it). It expires
// TTL+Grace after anyone was last seen in it, or Abandon after its host was
// when it has no guest, so rooms of crashed instances and hosts that
// dropped go away on their own. The abandoned rooms (see store.Store) are in the
// sorted set PREFIX away, by when they expire; an address's rooms in the
// set PREFIX addr:IP, which lives TTL+Grace after its last create. Create,
// join, resume, leave, away and the checks of Tick are Lua scripts, atomic
// in Redis; create deletes keys it finds in those sets, so the store needs
// one Redis, not a Cluster. Messages to a seat are published on PREFIX
// seat:CODE:h (or :g); each instance subscribes, on one connection, to the
// seats of its own sockets.
//
// Times come from the servers' clocks, which should agree within a small
// part of the resume grace (NTP does).
type Store struct {
	rdb    *redis.Client
	prefix string

	cfg     store.Config
	deliver func(signal.Role, signal.Code, []byte) bool

	ps   *redis.PubSub
	wg   sync.WaitGroup // dispatch
	once sync.Once

	mu      sync.Mutex
	subs    map[string]int             // channel → local holders
	waiting map[string][]chan struct{} // channel → Attach calls awaiting Redis's confirmation
	// The room count: rooms counted by SCAN at counted, and created here
	// since (see Rooms).
	rooms, created int
	counted        time.Time
	counting       bool // a SCAN is under way
}

// roomsMaxAge is how old the room count of Rooms may be.
const roomsMaxAge = 2 * time.Second

// Open returns a store in the Redis at addr (host:port, or a redis:// URL
// with its options), checked to answer within five seconds; see New.
func Open(ctx context.Context, addr, prefix string) (*Store, error) {
	var opt *redis.Options
	if strings.Contains(addr, "://") {
		var err error
		if opt, err = redis.ParseURL(addr); err != nil {
			return nil, fmt.Errorf("redisstore: %q: %w", addr, err)
		}
	} else {
		opt = &redis.Options{Addr: addr}
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redisstore: cannot reach Redis at %s: %w", addr, err)
	}
	return New(rdb, prefix), nil
}

// New returns a store in the Redis that rdb reaches, with every key and
// channel name starting with prefix (e.g. "duet:"), so that deployments
// and tests can share one Redis. The store closes rdb.
func New(rdb *redis.Client, prefix string) *Store {
	return &Store{
		rdb: rdb, prefix: prefix,
		subs:    make(map[string]int),
		waiting: make(map[string][]chan struct{}),
	}
}

// Bind subscribes, with no channels yet, and starts dispatching messages.
func (r *Store) Bind(cfg store.Config, deliver func(signal.Role, signal.Code, []byte) bool) {
	r.cfg, r.deliver = cfg, deliver
	r.ps = r.rdb.Subscribe(context.Background())
	ch := r.ps.ChannelWithSubscriptions(redis.WithChannelSize(1024))
	r.wg.Go(func() { r.dispatch(ch) })
}

// dispatch hands published messages to the server until the PubSub closes.
func (r *Store) dispatch(ch <-chan any) {
	for v := range ch {
		switch m := v.(type) {
		case *redis.Message:
			role, code, ok := r.parseChannel(m.Channel)
			if ok {
				r.deliver(role, code, []byte(m.Payload))
			}
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				r.mu.Lock()
				for _, w := range r.waiting[m.Channel] {
					close(w)
				}
				delete(r.waiting, m.Channel)
				r.mu.Unlock()
			}
		}
	}
}

func (r *Store) roomKey(code signal.Code) string { return r.prefix + "room:" + string(code) }
func (r *Store) awayKey() string                 { return r.prefix + "away" }
func (r *Store) addrKey(ip string) string        { return r.prefix + "addr:" + ip }

func (r *Store) channel(role signal.Role, code signal.Code) string {
	if role == signal.Host {
		return r.prefix + "seat:" + string(code) + ":h"
	}
	return r.prefix + "seat:" + string(code) + ":g"
}

func (r *Store) parseChannel(ch string) (signal.Role, signal.Code, bool) {
	rest, ok := strings.CutPrefix(ch, r.prefix+"seat:")
	if !ok {
		return 0, "", false
	}
	room, seat, ok := strings.Cut(rest, ":")
	code, err := signal.ParseCode(room)
	if !ok || err != nil || string(code) != room {
		return 0, "", false
	}
	if seat == "g" {
		return signal.Guest, code, true
	}
	return signal.Host, code, true
}

func ms(t time.Time) int64       { return t.UnixMilli() }
func msOf(d time.Duration) int64 { return d.Milliseconds() }
func (r *Store) keep() int64     { return msOf(r.cfg.TTL + r.cfg.Grace) }

// abandon is the life of a room with no guest after its host's last sign.
func (r *Store) abandon() int64       { return msOf(r.cfg.Abandon) }
func roleArg(role signal.Role) string { return strconv.Itoa(int(role)) }
func redisErr(op string, err error) error {
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// updateLua, for the scripts that change a room's seats (KEYS[1]), puts
// the room in the set of abandoned rooms (KEYS[2]) by when it expires, if
// no socket holds a seat of it, or takes it out.
const updateLua = `
local function update(now)
  local r = redis.call('hmget', KEYS[1], 'g', 'ha', 'ga')
  if r[2] and (r[1] == '' or r[3]) then
    redis.call('zadd', KEYS[2], now + math.max(redis.call('pttl', KEYS[1]), 0), KEYS[1])
  else
    redis.call('zrem', KEYS[2], KEYS[1])
  end
end
`

// createScript returns 0 if the code is taken, 1 when it made the room,
// 2 when it deleted an abandoned room for it (the owner's own when the
// owner, KEYS[3], holds RoomsPerAddress; else, when the store is full, the
// soonest to expire), -1 for signal.ErrTooManyRooms and -2 for ErrServerFull.
var createScript = redis.NewScript(`
if redis.call('exists', KEYS[1]) == 1 then return 0 end
local now = tonumber(ARGV[2])
redis.call('zremrangebyscore', KEYS[2], '-inf', now)
local n, mine, ends = 0, nil, nil
for _, k in ipairs(redis.call('smembers', KEYS[3])) do
  if redis.call('hget', k, 'o') == ARGV[4] then
    n = n + 1
    local e = redis.call('zscore', KEYS[2], k)
    if e and (not ends or tonumber(e) < ends) then mine, ends = k, tonumber(e) end
  else
    redis.call('srem', KEYS[3], k)
  end
end
local victim = nil
if n >= tonumber(ARGV[5]) then
  if not mine then return -1 end
  victim = mine
  redis.call('srem', KEYS[3], victim)
elseif ARGV[6] == '1' then
  for _ = 1, 8 do
    local top = redis.call('zrange', KEYS[2], 0, 0)
    if #top == 0 then break end
    if redis.call('exists', top[1]) == 1 then
      victim = top[1]
      break
    end
    redis.call('zrem', KEYS[2], top[1])
  end
  if not victim then return -2 end
end
if victim then
  redis.call('del', victim)
  redis.call('zrem', KEYS[2], victim)
end
redis.call('hset', KEYS[1], 'h', ARGV[1], 'g', '', 'since', ARGV[2], 'hs', ARGV[2], 'gs', '0', 'o', ARGV[4])
redis.call('pexpire', KEYS[1], ARGV[3])
redis.call('sadd', KEYS[3], KEYS[1])
redis.call('pexpire', KEYS[3], ARGV[7])
if victim then return 2 end
return 1`)

// Create decides whether the store is full by Rooms, a count up to two
// seconds old.
func (r *Store) Create(ctx context.Context, code signal.Code, token, owner string, now time.Time) (bool, bool, error) {
	rooms, err := r.Rooms(ctx)
	if err != nil {
		return false, false, err
	}
	full := "0"
	if rooms >= r.cfg.Rooms {
		full = "1"
	}
	n, err := createScript.Run(ctx, r.rdb, []string{r.roomKey(code), r.awayKey(), r.addrKey(owner)},
		token, ms(now), r.abandon(), owner, r.cfg.RoomsPerAddress, full, r.keep()).Int()
	switch {
	case err != nil:
		return false, false, redisErr("create", err)
	case n == -1:
		return false, false, signal.ErrTooManyRooms
	case n == -2:
		return false, false, signal.ErrServerFull
	case n == 1:
		r.mu.Lock()
		r.created++
		r.mu.Unlock()
	}
	return n > 0, n == 2, nil
}

// joinScript: a waiting host's room expires by its own rules first (TTL
// since it began waiting, Abandon since the host was seen).
var joinScript = redis.NewScript(`
local r = redis.call('hmget', KEYS[1], 'h', 'g', 'since', 'hs')
if not r[1] then return 'not-found' end
local now = tonumber(ARGV[2])
if r[2] == '' and (now - tonumber(r[3]) >= tonumber(ARGV[3]) or now - tonumber(r[4]) > tonumber(ARGV[5])) then
  redis.call('del', KEYS[1])
  redis.call('zrem', KEYS[2], KEYS[1])
  return 'expired'
end
if r[2] ~= '' then return 'full' end
redis.call('hset', KEYS[1], 'g', ARGV[1], 'gs', ARGV[2])
redis.call('hdel', KEYS[1], 'ga')
redis.call('pexpire', KEYS[1], ARGV[4])
redis.call('zrem', KEYS[2], KEYS[1])
return 'ok'`)

func (r *Store) Join(ctx context.Context, code signal.Code, token string, now time.Time) error {
	res, err := joinScript.Run(ctx, r.rdb, []string{r.roomKey(code), r.awayKey()}, token, ms(now), msOf(r.cfg.TTL), r.keep(), r.abandon()).Text()
	if err != nil {
		return redisErr("join", err)
	}
	switch res {
	case "ok":
		return nil
	case "expired":
		return signal.ErrRoomExpired
	case "full":
		return signal.ErrRoomFull
	default:
		return signal.ErrRoomNotFound
	}
}

var resumeScript = redis.NewScript(`
local r = redis.call('hmget', KEYS[1], 'h', 'g')
if not r[1] then return {-1, 0} end
local role, other
if r[1] == ARGV[1] then
  role, other = 0, r[2]
  redis.call('hset', KEYS[1], 'hs', ARGV[2])
  redis.call('hdel', KEYS[1], 'ha')
elseif r[2] == ARGV[1] then
  role, other = 1, r[1]
  redis.call('hset', KEYS[1], 'gs', ARGV[2])
  redis.call('hdel', KEYS[1], 'ga')
else
  return {-1, 0}
end
if r[2] == '' then
  redis.call('pexpire', KEYS[1], ARGV[4])
else
  redis.call('pexpire', KEYS[1], ARGV[3])
end
redis.call('zrem', KEYS[2], KEYS[1])
if other ~= '' then return {role, 1} end
return {role, 0}`)

func (r *Store) Resume(ctx context.Context, code signal.Code, token string, now time.Time) (signal.Role, bool, error) {
	res, err := resumeScript.Run(ctx, r.rdb, []string{r.roomKey(code), r.awayKey()}, token, ms(now), r.keep(), r.abandon()).Int64Slice()
	if err != nil {
		return 0, false, redisErr("resume", err)
	}
	if len(res) != 2 || res[0] < 0 {
		return 0, false, signal.ErrRoomNotFound
	}
	return signal.Role(res[0]), res[1] == 1, nil
}

var leaveScript = redis.NewScript(updateLua + `
local f = 'g'
if ARGV[1] == '0' then f = 'h' end
if redis.call('hget', KEYS[1], f) ~= ARGV[2] then return 0 end
if f == 'h' then
  redis.call('del', KEYS[1])
  redis.call('zrem', KEYS[2], KEYS[1])
else
  redis.call('hset', KEYS[1], 'g', '', 'since', ARGV[3])
  redis.call('hdel', KEYS[1], 'ga')
  redis.call('pexpire', KEYS[1], ARGV[4])
  update(tonumber(ARGV[3]))
end
return 1`)

// Leave: a room whose guest leaves lives on as long as its host is seen
// (Abandon after the last sign).
func (r *Store) Leave(ctx context.Context, seat signal.Seat, now time.Time) error {
	if err := leaveScript.Run(ctx, r.rdb, []string{r.roomKey(seat.Room), r.awayKey()}, roleArg(seat.Role), seat.Token, ms(now), r.abandon()).Err(); err != nil {
		return redisErr("leave", err)
	}
	return nil
}

// awayScript marks a seat's socket dropped.
var awayScript = redis.NewScript(updateLua + `
if redis.call('hget', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('hset', KEYS[1], ARGV[1] .. 'a', ARGV[3])
update(tonumber(ARGV[3]))
return 1`)

func (r *Store) Away(ctx context.Context, seat signal.Seat, now time.Time) error {
	if err := awayScript.Run(ctx, r.rdb, []string{r.roomKey(seat.Room), r.awayKey()}, roleField(seat.Role), seat.Token, ms(now)).Err(); err != nil {
		return redisErr("away", err)
	}
	return nil
}

// touchScript marks a seat seen, and held unless it dropped at the time
// of the tick or later; a room with no guest lives Abandon more, one with
// a guest TTL+Grace.
var touchScript = redis.NewScript(updateLua + `
local f = 'g'
if ARGV[1] == '0' then f = 'h' end
if redis.call('hget', KEYS[1], f) == ARGV[2] then
  local now = tonumber(ARGV[3])
  redis.call('hset', KEYS[1], f .. 's', ARGV[3])
  local away = redis.call('hget', KEYS[1], f .. 'a')
  if away and tonumber(away) < now then redis.call('hdel', KEYS[1], f .. 'a') end
  if redis.call('hget', KEYS[1], 'g') == '' then
    redis.call('pexpire', KEYS[1], ARGV[5])
  else
    redis.call('pexpire', KEYS[1], ARGV[4])
  end
  update(now)
end
return 0`)

// checkScript returns a Status.
var checkScript = redis.NewScript(updateLua + `
local r = redis.call('hmget', KEYS[1], 'h', 'g', 'since', 'hs', 'gs')
local now = tonumber(ARGV[3])
if ARGV[1] == '0' then
  if r[1] ~= ARGV[2] then return 3 end
  if r[2] == '' then
    if now - tonumber(r[3]) >= tonumber(ARGV[4]) then
      redis.call('del', KEYS[1])
      redis.call('zrem', KEYS[2], KEYS[1])
      return 1
    end
    return 0
  end
  if now - tonumber(r[5]) > tonumber(ARGV[5]) then
    redis.call('hset', KEYS[1], 'g', '', 'since', ARGV[3])
    redis.call('hdel', KEYS[1], 'ga')
    redis.call('pexpire', KEYS[1], ARGV[6])
    update(now)
    return 2
  end
  return 0
end
if r[2] ~= ARGV[2] then return 3 end
if now - tonumber(r[4]) > tonumber(ARGV[5]) then
  redis.call('del', KEYS[1])
  redis.call('zrem', KEYS[2], KEYS[1])
  return 2
end
return 0`)

// Tick marks every seat seen in one pipeline, then checks each in another,
// so that two partners on this server never find each other away.
func (r *Store) Tick(ctx context.Context, seats []signal.Seat, now time.Time) ([]store.Status, error) {
	if len(seats) == 0 {
		return nil, nil
	}
	// Load the scripts once, so that the pipelines can use EVALSHA.
	for _, sc := range []*redis.Script{touchScript, checkScript} {
		if err := sc.Load(ctx, r.rdb).Err(); err != nil {
			return nil, redisErr("load script", err)
		}
	}
	pipe := r.rdb.Pipeline()
	for _, s := range seats {
		touchScript.EvalSha(ctx, pipe, []string{r.roomKey(s.Room), r.awayKey()}, roleArg(s.Role), s.Token, ms(now), r.keep(), r.abandon())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, redisErr("touch", err)
	}
	pipe = r.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(seats))
	for i, s := range seats {
		cmds[i] = checkScript.EvalSha(ctx, pipe, []string{r.roomKey(s.Room), r.awayKey()},
			roleArg(s.Role), s.Token, ms(now), msOf(r.cfg.TTL), msOf(r.cfg.Grace), r.abandon())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, redisErr("check", err)
	}
	st := make([]store.Status, len(seats))
	for i, c := range cmds {
		n, err := c.Int()
		if err != nil {
			return nil, redisErr("check", err)
		}
		st[i] = store.Status(n)
	}
	return st, nil
}

// Held reads the seats' tokens in one pipeline.
func (r *Store) Held(ctx context.Context, seats []signal.Seat) ([]bool, error) {
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(seats))
	for i, s := range seats {
		cmds[i] = pipe.HGet(ctx, r.roomKey(s.Room), roleField(s.Role))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, redisErr("held", err)
	}
	held := make([]bool, len(seats))
	for i, c := range cmds {
		held[i] = c.Val() == seats[i].Token
	}
	return held, nil
}

// roleField is the field of a room's hash holding role's token.
func roleField(role signal.Role) string {
	if role == signal.Host {
		return "h"
	}
	return "g"
}

func (r *Store) Publish(ctx context.Context, seat signal.Role, room signal.Code, msg []byte) (bool, error) {
	n, err := r.rdb.Publish(ctx, r.channel(seat, room), msg).Result()
	if err != nil {
		return false, redisErr("publish", err)
	}
	return n > 0, nil
}

// Attach subscribes to the seat's channel, the first time for this server,
// and waits for Redis to confirm, so that nothing published after Attach
// returns is missed.
func (r *Store) Attach(ctx context.Context, seat signal.Role, room signal.Code) error {
	ch := r.channel(seat, room)
	r.mu.Lock()
	r.subs[ch]++
	if r.subs[ch] > 1 {
		r.mu.Unlock()
		return nil
	}
	w := make(chan struct{})
	r.waiting[ch] = append(r.waiting[ch], w)
	r.mu.Unlock()
	if err := r.ps.Subscribe(ctx, ch); err != nil {
		return redisErr("subscribe", err)
	}
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		return redisErr("subscribe", ctx.Err())
	}
}

// Detach unsubscribes from the seat's channel when no socket of this
// server holds the seat any more.
func (r *Store) Detach(ctx context.Context, seat signal.Role, room signal.Code) error {
	ch := r.channel(seat, room)
	r.mu.Lock()
	r.subs[ch]--
	last := r.subs[ch] <= 0
	if last {
		delete(r.subs, ch)
	}
	r.mu.Unlock()
	if !last {
		return nil
	}
	if err := r.ps.Unsubscribe(ctx, ch); err != nil {
		return redisErr("unsubscribe", err)
	}
	return nil
}

// Rooms counts the rooms with SCAN, O(rooms), at most every two seconds
// (one SCAN at a time); in between, it adds the rooms this instance
// created since to the last count (the cap on rooms and /metrics call it
// often). Rooms deleted since are still counted.
func (r *Store) Rooms(ctx context.Context) (int, error) {
	r.mu.Lock()
	if r.counting || (!r.counted.IsZero() && time.Since(r.counted) < roomsMaxAge) {
		n := r.rooms + r.created
		r.mu.Unlock()
		return n, nil
	}
	r.counting = true
	created := r.created
	r.mu.Unlock()

	n := 0
	iter := r.rdb.Scan(ctx, 0, r.prefix+"room:*", 1000).Iterator()
	for iter.Next(ctx) {
		n++
	}
	err := iter.Err()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counting = false
	if err != nil {
		return 0, redisErr("scan", err)
	}
	// Rooms created during the SCAN may or may not be in n: count them
	// again, rather than miss them.
	r.rooms, r.created, r.counted = n, r.created-created, time.Now()
	return n + r.created, nil
}

// Health pings Redis.
func (r *Store) Health(ctx context.Context) error {
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		return redisErr("ping", err)
	}
	return nil
}

// Close stops dispatching and closes the client. The rooms stay in Redis
// for the other instances, or this one restarted. Close is idempotent.
func (r *Store) Close() error {
	var err error
	r.once.Do(func() {
		if r.ps != nil {
			err = r.ps.Close()
		}
		r.wg.Wait()
		if e := r.rdb.Close(); e != nil && !errors.Is(e, redis.ErrClosed) {
			err = errors.Join(err, e)
		}
	})
	return err
}

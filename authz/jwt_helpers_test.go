package authz

import "time"

// jwksRefetchGap is the jwtauth package's least time between two kid-miss
// refetches of a JWKS URL (the token tests advance a fake clock by it).
const jwksRefetchGap = 10 * time.Second

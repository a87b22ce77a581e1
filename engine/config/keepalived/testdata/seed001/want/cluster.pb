# cluster.pb imported from keepalived (test) by "seesaw config import keepalived".
# Both nodes carry this same file. Check it with: seesaw config check

# The cluster VIP: held by the master, the gateway of NAT backends.
seesaw_vip {
  fqdn: "vip-1-vip"
  ipv4: "192.168.128.119/24"
  ipv6: "2004::192:168:128:119/64"
  status: PRODUCTION
}

# The pair. Seesaw gives VRRP priority 255 to the lower IPv4 address.
node {
  fqdn: "lb116"
  ipv4: "192.168.128.116/24"
  ipv6: "2004::192:168:128:116/64"
  status: PRODUCTION
}
node {
  fqdn: "lb75"
  ipv4: "192.168.128.75/24"
  ipv6: "2004::192:168:128:75/64"
  status: PRODUCTION
}

# from virtual_server at testdata/seed001/lb116.conf:52
vserver {
  name: "192.168.128.118@vip-1"
  entry_address {
    fqdn: "192.168.128.118"
    ipv4: "192.168.128.118/32"
    status: PRODUCTION
  }
  rp: "root"
  vserver_entry {
    protocol: TCP
    port: 80
    scheduler: RR
    mode: NAT
    healthcheck {
      type: TCP
      interval: 10
      timeout: 10
      port: 1936
      retries: 1
    }
    source_nat: false
  }
  backend {
    host {
      fqdn: "192.168.143.192"
      ipv4: "192.168.143.192/32"
      status: PRODUCTION
    }
    weight: 1
  }
  backend {
    host {
      fqdn: "192.168.138.100"
      ipv4: "192.168.138.100/32"
      status: PRODUCTION
    }
    weight: 1
  }
  backend {
    host {
      fqdn: "192.168.129.100"
      ipv4: "192.168.129.100/32"
      status: PRODUCTION
    }
    weight: 1
  }
}

# from virtual_server at testdata/seed001/lb116.conf:80
vserver {
  name: "[2004::192:168:128:118]@vip-1"
  entry_address {
    fqdn: "2004::192:168:128:118"
    ipv6: "2004::192:168:128:118/128"
    status: PRODUCTION
  }
  rp: "root"
  vserver_entry {
    protocol: TCP
    port: 80
    scheduler: RR
    mode: NAT
    healthcheck {
      type: TCP
      interval: 10
      timeout: 1
      port: 1936
      retries: 1
    }
    source_nat: false
  }
  backend {
    host {
      fqdn: "2004::192:168:143:192"
      ipv6: "2004::192:168:143:192/128"
      status: PRODUCTION
    }
    weight: 1
  }
  backend {
    host {
      fqdn: "2004::192:168:138:100"
      ipv6: "2004::192:168:138:100/128"
      status: PRODUCTION
    }
    weight: 1
  }
  backend {
    host {
      fqdn: "2004::192:168:129:100"
      ipv6: "2004::192:168:129:100/128"
      status: PRODUCTION
    }
    weight: 1
  }
}

# Not imported (see "seesaw config import keepalived" output):
#   testdata/seed001/lb116.conf:8: enable_script_security: Seesaw runs no user scripts
#   testdata/seed001/lb116.conf:9: script_user root: Seesaw runs no user scripts
#   testdata/seed001/lb116.conf:12: vrrp_script vip-1-kube-lock {...}: health scripts that move VRRP priority; Seesaw fails over on liveness and on backend health seen by both nodes; no tracking scripts, files or interfaces
#   testdata/seed001/lb116.conf:32: track_script {...}: Seesaw fails over on liveness and on backend health seen by both nodes; no tracking scripts, files or interfaces
#   testdata/seed001/lb116.conf:40: virtual_router_id 102: Seesaw runs one VRRP router per pair: vrid 20 (from testdata/seed001/lb116.conf:22) moves these VIPs too
#   testdata/seed001/lb75.conf:8: enable_script_security: Seesaw runs no user scripts
#   testdata/seed001/lb75.conf:9: script_user root: Seesaw runs no user scripts
#   testdata/seed001/lb75.conf:12: vrrp_script vip-1-kube-lock {...}: health scripts that move VRRP priority; Seesaw fails over on liveness and on backend health seen by both nodes; no tracking scripts, files or interfaces
#   testdata/seed001/lb75.conf:32: track_script {...}: Seesaw fails over on liveness and on backend health seen by both nodes; no tracking scripts, files or interfaces
#   testdata/seed001/lb75.conf:40: virtual_router_id 102: Seesaw runs one VRRP router per pair: vrid 20 (from testdata/seed001/lb116.conf:22) moves these VIPs too

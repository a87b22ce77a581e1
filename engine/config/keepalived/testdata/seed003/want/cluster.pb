# cluster.pb imported from keepalived (test) by "seesaw config import keepalived".
# Both nodes carry this same file. Check it with: seesaw config check

# The cluster VIP: held by the master, the gateway of NAT backends.
seesaw_vip {
  fqdn: "lvs_dr-vip"
  ipv4: "192.168.100.46/24"
  status: PRODUCTION
}

# The pair. Seesaw gives VRRP priority 255 to the lower IPv4 address.
node {
  fqdn: "LVS_DR01"
  ipv4: "192.168.100.44/24"
  status: PRODUCTION
}
node {
  fqdn: "LVS_DR02"
  ipv4: "192.168.100.45/24"
  status: PRODUCTION
}

# from virtual_server at testdata/seed003/master.conf:25
vserver {
  name: "192.168.100.40@lvs_dr"
  entry_address {
    fqdn: "192.168.100.40"
    ipv4: "192.168.100.40/32"
    status: PRODUCTION
  }
  rp: "root"
  vserver_entry {
    protocol: TCP
    port: 6443
    scheduler: RR
    mode: DSR
    healthcheck {
      type: TCP
      interval: 10
      timeout: 3
      retries: 1
    }
  }
  backend {
    host {
      fqdn: "192.168.100.41"
      ipv4: "192.168.100.41/32"
      status: PRODUCTION
    }
    weight: 1
  }
  backend {
    host {
      fqdn: "192.168.100.42"
      ipv4: "192.168.100.42/32"
      status: PRODUCTION
    }
    weight: 1
  }
  backend {
    host {
      fqdn: "192.168.100.43"
      ipv4: "192.168.100.43/32"
      status: PRODUCTION
    }
    weight: 1
  }
}

# Not imported (see "seesaw config import keepalived" output):
#   testdata/seed003/backup.conf:16: authentication {...}: VRRPv3 has no authentication; Seesaw's peer sync is authenticated by mutual TLS instead
#   testdata/seed003/master.conf:16: authentication {...}: VRRPv3 has no authentication; Seesaw's peer sync is authenticated by mutual TLS instead

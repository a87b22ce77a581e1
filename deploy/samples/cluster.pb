# cluster.pb: the cluster and its services, in protobuf text format (schema:
# proto/config/config.proto; "{ }" and "< >" both work). Both nodes carry the
# same file. Check it with: seesaw_cli config check

# The cluster VIP, held by the master node. Its status enables HA.
seesaw_vip {
  fqdn: "seesaw-vip.example.com."
  ipv4: "192.0.2.4/24"
  ipv6: "2001:db8:0:1::4/64"
  status: PRODUCTION
}

# The two nodes. The lower IPv4 address gets VRRP priority 255.
node {
  fqdn: "seesaw1.example.com."
  ipv4: "192.0.2.2/24"
  ipv6: "2001:db8:0:1::2/64"
  status: PRODUCTION
}
node {
  fqdn: "seesaw2.example.com."
  ipv4: "192.0.2.3/24"
  ipv6: "2001:db8:0:1::3/64"
  status: PRODUCTION
}

# A dual-stack web service: TCP/80 on an IPv4 and an IPv6 VIP, NAT, round
# robin. The backends serve on port 80 and answer checks on port 8080; with
# NAT their replies must route back through the load balancer.
vserver {
  name: "web@example"
  entry_address {
    fqdn: "web.example.com."
    ipv4: "192.0.2.100/32"
    ipv6: "2001:db8:0:1::100/128"
    status: PRODUCTION
  }
  rp: "web-oncall@example.com"
  vserver_entry {
    protocol: TCP
    port: 80
    scheduler: RR
    mode: NAT
    server_low_watermark: 0.5
    healthcheck {
      type: TCP
      port: 8080
      interval: 5
      timeout: 2
    }
  }
  backend {
    host {
      fqdn: "web1.example.com."
      ipv4: "198.51.100.11/24"
      ipv6: "2001:db8:0:2::11/64"
      status: PRODUCTION
    }
    weight: 1
  }
  backend {
    host {
      fqdn: "web2.example.com."
      ipv4: "198.51.100.12/24"
      ipv6: "2001:db8:0:2::12/64"
      status: PRODUCTION
    }
    weight: 1
  }
}

# A DNS service in direct server return (the default mode): the backends have
# the VIP on a loopback or dummy interface and reply to clients directly.
# The DNS check resolves a name through each backend.
vserver {
  name: "dns@example"
  entry_address {
    fqdn: "dns.example.com."
    ipv4: "192.0.2.53/32"
    status: PRODUCTION
  }
  rp: "dns-oncall@example.com"
  vserver_entry {
    protocol: UDP
    port: 53
    scheduler: WRR
  }
  vserver_entry {
    protocol: TCP
    port: 53
    scheduler: WRR
  }
  healthcheck {
    type: DNS
    port: 53
    mode: DSR
    method: "A"
    send: "www.example.com."
    receive: "192.0.2.100"
  }
  backend {
    host {
      fqdn: "ns1.example.com."
      ipv4: "192.0.2.21/24"
      status: PRODUCTION
    }
    weight: 2
  }
  backend {
    host {
      fqdn: "ns2.example.com."
      ipv4: "192.0.2.22/24"
      status: PRODUCTION
    }
  }
}

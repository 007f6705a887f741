/* cffi cdef: the declarations Python sees. Only what cffi's parser understands (no macros
 * with expressions, no includes). */
typedef struct otus_pkt {
    int64_t  ts_ns;
    uint32_t offset;
    uint32_t caplen;
    uint32_t wirelen;
    uint32_t ifindex;
    uint16_t linktype;
    uint16_t vlan_tci;
    uint16_t vlan_tpid;
    uint16_t flags;
} otus_pkt_t;

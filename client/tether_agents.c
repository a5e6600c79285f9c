/*  =========================================================================
    tether_agents - a list of connected agents, one or more ListAgents pages

    The list keeps each page's ListAgentsResponse as it was unpacked and an
    index of its agents across pages, so reading an entry is one lookup
    and adding a page copies nothing but pointers.

    Invariants: agents[] holds every page's agents in page order; ids
    increase strictly from one page to the next (the gateway lists in id
    order, each page after the last id of the one before), which is what
    lets tether_client_list_all_agents tell a gateway that repeats itself
    from one that makes progress; next_page_token is the last page's.
    =========================================================================
*/
#include "tether_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct _tether_agents_t
{
    Tether__V1__ListAgentsResponse **pages; //  owned, n_pages of them
    size_t n_pages;                         //
    Tether__V1__AgentInfo **agents;         //  borrowed from pages
    size_t n_agents;                        //
    size_t agents_max;                      //  room in agents[]
};

tether_agents_t *
tether_agents_new (void)
{
    tether_agents_t *self = (tether_agents_t *) calloc (1, sizeof *self);
    assert (self);
    return self;
}

int
tether_agents_add_page (tether_agents_t *self, const uint8_t *data, size_t size)
{
    assert (self);
    Tether__V1__ListAgentsResponse *page =
        tether__v1__list_agents_response__unpack (NULL, size, data);
    if (!page)
        return -1;
    //  A page must start after the previous one ended.
    if (page->n_agents && self->n_agents
        && strcmp (page->agents[0]->agent_id,
                   self->agents[self->n_agents - 1]->agent_id)
               <= 0) {
        tether__v1__list_agents_response__free_unpacked (page, NULL);
        return -1;
    }
    if (self->n_agents + page->n_agents > self->agents_max) {
        size_t max = self->agents_max ? self->agents_max * 2 : 64;
        while (max < self->n_agents + page->n_agents)
            max *= 2;
        self->agents = (Tether__V1__AgentInfo **) realloc (
            self->agents, max * sizeof (Tether__V1__AgentInfo *));
        assert (self->agents);
        self->agents_max = max;
    }
    Tether__V1__ListAgentsResponse **pages =
        (Tether__V1__ListAgentsResponse **) realloc (
            self->pages, (self->n_pages + 1) * sizeof (*pages));
    assert (pages);
    self->pages = pages;
    self->pages[self->n_pages++] = page;
    for (size_t i = 0; i < page->n_agents; i++)
        self->agents[self->n_agents++] = page->agents[i];
    return 0;
}

const char *
tether_agents_next_page_token (tether_agents_t *self)
{
    assert (self);
    if (self->n_pages == 0)
        return "";
    const char *token = self->pages[self->n_pages - 1]->next_page_token;
    return token ? token : "";
}

size_t
tether_agents_size (tether_agents_t *self)
{
    assert (self);
    return self->n_agents;
}

static Tether__V1__AgentInfo *
s_agent (tether_agents_t *self, size_t index)
{
    assert (self);
    assert (index < self->n_agents);
    return self->agents[index];
}

const char *
tether_agents_id (tether_agents_t *self, size_t index)
{
    return s_agent (self, index)->agent_id;
}

const char *
tether_agents_edge (tether_agents_t *self, size_t index)
{
    return s_agent (self, index)->edge;
}

int64_t
tether_agents_connected_at_ms (tether_agents_t *self, size_t index)
{
    return s_agent (self, index)->connected_at_unix_ms;
}

uint32_t
tether_agents_in_flight (tether_agents_t *self, size_t index)
{
    return s_agent (self, index)->in_flight;
}

uint64_t
tether_agents_session (tether_agents_t *self, size_t index)
{
    return s_agent (self, index)->session;
}

size_t
tether_agents_label_count (tether_agents_t *self, size_t index)
{
    return s_agent (self, index)->n_labels;
}

int
tether_agents_label_at (tether_agents_t *self,
                        size_t index,
                        size_t label,
                        const char **key_p,
                        const char **value_p)
{
    Tether__V1__AgentInfo *agent = s_agent (self, index);
    if (label >= agent->n_labels)
        return -1;
    if (key_p)
        *key_p = agent->labels[label]->key;
    if (value_p)
        *value_p = agent->labels[label]->value;
    return 0;
}

void
tether_agents_destroy (tether_agents_t **self_p)
{
    assert (self_p);
    tether_agents_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = self->n_pages; i > 0; i--)
        tether__v1__list_agents_response__free_unpacked (self->pages[i - 1],
                                                         NULL);
    free (self->pages);
    free (self->agents);
    free (self);
    *self_p = NULL;
}

package compliance

import (
	"fmt"
	"strconv"
	"strings"
)

// The known control ids of the frameworks whose numbering is small and
// stable enough to list, so a typo in a policy is refused at load rather
// than shown to an auditor. Sources (checked 2026-11-27) are in
// docs/compliance.md.

// isoControls is the number of controls per theme of ISO/IEC 27001:2022
// Annex A (93 in all): A.5 organisational, A.6 people, A.7 physical, A.8
// technological. Every number from 1 to the count exists.
var isoControls = map[string]int{"5": 37, "6": 8, "7": 14, "8": 34}

// nistSubcategories lists the NIST CSF 2.0 subcategories (CSWP 29,
// 2024-02-26): 106 in 22 categories. Numbers missing from a category were
// withdrawn or moved in 2.0 (ID.AM-06, DE.CM-04 …) and are not valid.
var nistSubcategories = map[string][]int{
	"GV.OC": {1, 2, 3, 4, 5},
	"GV.RM": {1, 2, 3, 4, 5, 6, 7},
	"GV.RR": {1, 2, 3, 4},
	"GV.PO": {1, 2},
	"GV.OV": {1, 2, 3},
	"GV.SC": {1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
	"ID.AM": {1, 2, 3, 4, 5, 7, 8},
	"ID.RA": {1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
	"ID.IM": {1, 2, 3, 4},
	"PR.AA": {1, 2, 3, 4, 5, 6},
	"PR.AT": {1, 2},
	"PR.DS": {1, 2, 10, 11},
	"PR.PS": {1, 2, 3, 4, 5, 6},
	"PR.IR": {1, 2, 3, 4},
	"DE.CM": {1, 2, 3, 6, 9},
	"DE.AE": {2, 3, 4, 6, 7, 8},
	"RS.MA": {1, 2, 3, 4, 5},
	"RS.AN": {3, 6, 7, 8},
	"RS.CO": {2, 3},
	"RS.MI": {1, 2},
	"RC.RP": {1, 2, 3, 4, 5, 6},
	"RC.CO": {3, 4},
}

// pciSections is the number of second-level requirements of each of the
// twelve PCI DSS v4.0 principal requirements (1.1-1.5, 2.1-2.3 …
// 12.1-12.10). Deeper levels are checked for format only.
var pciSections = map[int]int{1: 5, 2: 3, 3: 7, 4: 2, 5: 4, 6: 5, 7: 3, 8: 6, 9: 5, 10: 7, 11: 6, 12: 10}

// KnownControls lists every valid ISO 27001:2022 Annex A control and NIST
// CSF 2.0 subcategory id, in order; other frameworks have no list.
func KnownControls(framework string) []string {
	var out []string
	switch framework {
	case FrameworkISO:
		for _, theme := range []string{"5", "6", "7", "8"} {
			for n := 1; n <= isoControls[theme]; n++ {
				out = append(out, fmt.Sprintf("A.%s.%d", theme, n))
			}
		}
	case FrameworkNIST:
		for _, fn := range []string{"GV", "ID", "PR", "DE", "RS", "RC"} {
			for _, cat := range nistCategoryOrder[fn] {
				for _, n := range nistSubcategories[fn+"."+cat] {
					out = append(out, fmt.Sprintf("%s.%s-%02d", fn, cat, n))
				}
			}
		}
	}
	return out
}

// nistCategoryOrder is the categories of each function in the order CSF
// 2.0 lists them.
var nistCategoryOrder = map[string][]string{
	"GV": {"OC", "RM", "RR", "PO", "OV", "SC"},
	"ID": {"AM", "RA", "IM"},
	"PR": {"AA", "AT", "DS", "PS", "IR"},
	"DE": {"CM", "AE"},
	"RS": {"MA", "AN", "CO", "MI"},
	"RC": {"RP", "CO"},
}

// checkNIST refuses a well-formed id that is not a CSF 2.0 subcategory.
func checkNIST(id string) error {
	cat, num, _ := strings.Cut(id, "-")
	nums, ok := nistSubcategories[cat]
	if !ok {
		return fmt.Errorf("%s control %q: %s is not a NIST CSF 2.0 category (1.1 ids like PR.AC are not valid in 2.0)", FrameworkNIST, id, cat)
	}
	n, _ := strconv.Atoi(num)
	for _, v := range nums {
		if v == n {
			return nil
		}
	}
	return fmt.Errorf("%s control %q: %s has no subcategory %s in CSF 2.0", FrameworkNIST, id, cat, num)
}

// checkPCI refuses a well-formed id whose second level does not exist.
func checkPCI(id string) error {
	parts := strings.Split(id, ".")
	if len(parts) < 2 {
		return nil
	}
	req, _ := strconv.Atoi(parts[0])
	sec, _ := strconv.Atoi(parts[1])
	if max := pciSections[req]; sec > max {
		return fmt.Errorf("%s control %q: requirement %d has sections %d.1-%d.%d", FrameworkPCI, id, req, req, req, max)
	}
	return nil
}
